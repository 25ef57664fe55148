"""Keeps the native (C++) log lines of TensorFlow, its converter and LiteRT off the console.

TensorFlow logs CUDA probing, CPU features and oneDNN notes from C++ while it is
imported, and "failed call to cuInit" as an error on every machine without a
GPU; the TFLite converter prints "Ignored output_format", its quantizer prints
"fully_quantize: 0, ..." and LiteRT announces its XNNPACK delegate. They are
written to file descriptors 1 and 2 directly, so Python's logging cannot hold
them. `native_output_filtered` captures both descriptors for a block, drops
those known lines and replays everything else (a real warning or error) in order.

Setting KERAS_EFFNET_NATIVE_LOGS=1 (the commands' `--verbose=2` does) turns the
filter off. This module imports only the standard library: `_quiet_import`
loads it before TensorFlow is imported (docs/training.md, "Training": console output).
"""

import contextlib
import os
import re
import sys
import tempfile

NOISE = re.compile(
    r"^(I\d{4} |WARNING: All log messages before absl::InitializeLog|To enable the following "
    r"instructions|E\d{4} .*(failed call to cuInit|Unable to register cu)|W\d{4} .*(Ignored "
    r"output_format|Ignored drop_control_dependency|Skipping runtime version metadata)|"
    r"fully_quantize: \d+, inference_type|INFO: Created TensorFlow Lite XNNPACK delegate)"
)


def native_logs_wanted():
    return os.environ.get("KERAS_EFFNET_NATIVE_LOGS") == "1"


@contextlib.contextmanager
def native_output_filtered(fds=(1, 2)):
    """Captures `fds` for the block; replays every line but the known noise (`NOISE`)."""
    if native_logs_wanted():
        yield
        return
    streams = {1: sys.stdout, 2: sys.stderr}
    for fd in fds:
        streams[fd].flush()
    saved = {fd: os.dup(fd) for fd in fds}
    files = {fd: tempfile.TemporaryFile(mode="w+b") for fd in fds}
    try:
        for fd in fds:
            os.dup2(files[fd].fileno(), fd)
        yield
    finally:
        for fd in fds:
            streams[fd].flush()
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
            files[fd].seek(0)
            text = files[fd].read().decode("utf8", "replace")
            files[fd].close()
            kept = [line for line in text.splitlines(keepends=True) if not NOISE.match(line)]
            streams[fd].write("".join(kept))
            streams[fd].flush()
