"""Census of op types and tensor dtypes in a .tflite model.

An integer model (int8, int16x8, QAT) must compute every op in integers. The
only float tensors allowed are the model's own float input/output, reached
through the QUANTIZE/DEQUANTIZE ops at the boundary. Anything else is a float
fallback (a denylisted node, an op the quantizer skipped) and is named.
"""

import collections

from keras_effnet.export import flatbuf

_BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")
_MAX_LISTED = 50  # A float model has hundreds; the JSON needs a sample.


def op_census(tflite_bytes):
    """Counts op types and tensor dtypes, and lists ops that compute in float.

    Args:
        tflite_bytes: The serialized .tflite model (metadata is fine).

    Returns:
        A JSON-ready dict:
            ops: {op type: count}; tensor_dtypes: {dtype: count} over all tensors;
            num_float_ops: how many ops read or write a float tensor, except
                QUANTIZE/DEQUANTIZE touching a model input or output;
            float_ops: the first 50 of them as {"index", "op", "output"};
            custom_ops: sorted custom op names (Flex ops are "Flex...");
            io: the model's input/output dtypes, shapes and quantization.
    """
    model = flatbuf.read_model(tflite_bytes)
    ops = collections.Counter()
    dtypes = collections.Counter()
    float_ops = []
    custom = set()
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            dtypes[flatbuf.type_name(tensor).lower()] += 1
        boundary = set(graph.inputs) | set(graph.outputs)
        for index, operator in enumerate(graph.operators):
            name = flatbuf.op_name(model, operator)
            ops[name] += 1
            if name.startswith("CUSTOM:"):
                custom.add(name[len("CUSTOM:") :])
            touched = [t for t in list(operator.inputs) + list(operator.outputs) if t >= 0]
            floats = [
                t for t in touched if flatbuf.type_name(graph.tensors[t]) in flatbuf.FLOAT_TYPES
            ]
            if name in _BOUNDARY_OPS:
                floats = [t for t in floats if t not in boundary]
            if floats:
                out = operator.outputs[0] if len(operator.outputs) else -1
                float_ops.append(
                    {
                        "index": index,
                        "op": name,
                        "output": flatbuf.tensor_name(graph.tensors[out]) if out >= 0 else "",
                    }
                )
    return {
        "ops": dict(sorted(ops.items())),
        "tensor_dtypes": dict(sorted(dtypes.items())),
        "num_float_ops": len(float_ops),
        "float_ops": float_ops[:_MAX_LISTED],
        "custom_ops": sorted(custom),
        "io": flatbuf.io_details(model),
    }


def check_builtin_only(census):
    """Raises ValueError if the model needs Flex (select TF) or custom ops."""
    if census["custom_ops"]:
        raise ValueError(
            "tflite model: needs non-builtin ops "
            f"{census['custom_ops']}; LiteRT on Android runs builtin ops only "
            "(Flex/select-TF ops need the extra TensorFlow delegate library)"
        )


def check_integer_only(census):
    """Raises ValueError if any op computes in float.

    Args:
        census: The dict from `op_census`.

    Raises:
        ValueError: naming the float ops (op type, index and output tensor).
    """
    check_builtin_only(census)
    found, count = census["float_ops"], census["num_float_ops"]
    if count:
        shown = ", ".join(f"{o['op']}#{o['index']}({o['output']})" for o in found[:10])
        more = f" and {count - 10} more" if count > 10 else ""
        raise ValueError(
            f"integer model: {count} ops compute in float, expected none "
            f"beyond the input/output QUANTIZE/DEQUANTIZE: {shown}{more}"
        )
