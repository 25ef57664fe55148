"""Reading and re-packing .tflite flatbuffers with LiteRT's generated schema.

The model schema module ships in `ai_edge_litert` and is at least as new as
the converter in TensorFlow 2.21, so every field the converter writes survives
an unpack/re-pack round trip. Re-packing drops bytes appended after the
flatbuffer (such as a zip of associated files), so callers append those last.
"""

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

_OP_NAMES = {
    value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}
_TYPE_NAMES = {
    value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")
}
FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16")


def read_model(tflite_bytes):
    """Unpacks .tflite bytes into a mutable `schema.ModelT`.

    Args:
        tflite_bytes: The serialized model.

    Returns:
        The model object tree.

    Raises:
        ValueError: if the bytes are not a TFLite flatbuffer.
    """
    data = bytes(tflite_bytes)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError(
            "tflite_bytes: not a TFLite flatbuffer (file identifier "
            f"{data[4:8]!r}, expected b'TFL3')"
        )
    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def write_model(model):
    """Packs a `schema.ModelT` into .tflite bytes (file identifier TFL3)."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_name(model, operator):
    """Returns the op type of `operator`: a builtin name or CUSTOM:<code>."""
    code = model.operatorCodes[operator.opcodeIndex]
    # Builtins past 127 live in builtinCode; old files only fill the
    # deprecated field, so the larger of the two is the real code.
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
    if name == "CUSTOM":
        custom = code.customCode
        if isinstance(custom, bytes):
            custom = custom.decode("utf-8", "replace")
        return f"CUSTOM:{custom}"
    return name


def type_name(tensor):
    """Returns the dtype name of a `schema.TensorT` (e.g. "INT8")."""
    return _TYPE_NAMES.get(tensor.type, f"TYPE_{tensor.type}")


def tensor_name(tensor):
    name = tensor.name
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name


def quant_params(tensor):
    """Returns (scales, zero_points) lists of a tensor; empty if not quantized."""
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return [], []
    zero = q.zeroPoint if q.zeroPoint is not None else np.zeros(len(q.scale))
    return [float(s) for s in q.scale], [int(z) for z in zero]


def io_details(model):
    """Describes the first subgraph's inputs and outputs.

    Returns:
        A dict {"inputs": [...], "outputs": [...]}, each entry a dict with name,
        dtype, shape, shape_signature, scale and zero_point (None if float).
    """
    graph = model.subgraphs[0]

    def describe(index):
        tensor = graph.tensors[index]
        scales, zeros = quant_params(tensor)
        signature = tensor.shapeSignature
        return {
            "name": tensor_name(tensor),
            "dtype": type_name(tensor).lower(),
            "shape": [int(d) for d in tensor.shape],
            "shape_signature": [
                int(d)
                for d in (signature if signature is not None and len(signature) else tensor.shape)
            ],
            "scale": scales[0] if scales else None,
            "zero_point": zeros[0] if zeros else None,
        }

    return {
        "inputs": [describe(i) for i in graph.inputs],
        "outputs": [describe(i) for i in graph.outputs],
    }
