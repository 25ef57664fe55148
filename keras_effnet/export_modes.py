"""The export modes and their input/output types: one TensorFlow-free table.

Read by the converter, QAT, the export CLI and the scaling study (whose
configuration must not import TensorFlow).
"""

TFLITE_MODES = ("fp32", "fp16", "dynamic", "int8", "int16x8")
MODES = ("savedmodel",) + TFLITE_MODES
# Modes that quantize activations: they need calibration images.
QUANTIZED_MODES = ("int8", "int16x8")
# Modes whose weights are stored in 8 bits (for plots: "quantized" series).
INTEGER_WEIGHT_MODES = ("int8", "int16x8", "dynamic")
# Integer modes' input/output dtypes, the default first.
IO_TYPES = {
    "int8": ("uint8", "int8", "float32"),
    "int16x8": ("float32", "int16"),
}
# The CLI's extra mode: quantization-aware training, then full-integer int8.
CLI_MODES = MODES + ("qat",)
ALL_IO_TYPES = ("uint8", "int8", "float32", "int16")


def check_mode(mode):
    """Raises ValueError unless `mode` is one of `MODES`."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {list(MODES)}, got {mode!r}")


def resolve_io_type(mode, io_type=None):
    """Returns the input/output dtype name for `mode` ("uint8", "float32", ...).

    Only integer modes have a choice: int8 takes uint8 (default; raw pixels),
    int8 or float32; int16x8 takes float32 (default) or int16. Float modes
    always have float32 input and output.
    """
    check_mode(mode)
    if io_type == "float":
        io_type = "float32"
    if mode not in IO_TYPES:
        if io_type not in (None, "float32"):
            raise ValueError(f"io_type: mode {mode!r} has float32 input/output, got {io_type!r}")
        return "float32"
    if io_type is None:
        return IO_TYPES[mode][0]
    if io_type not in IO_TYPES[mode]:
        raise ValueError(
            f"io_type: mode {mode!r} takes one of {list(IO_TYPES[mode])}, got {io_type!r}"
        )
    return io_type
