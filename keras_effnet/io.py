"""Atomic file writes: a crash never leaves a half-written artifact."""

import json
import os
import tempfile


def write_bytes_atomic(path, data):
    """Writes `data` to `path` via a temporary file in the same directory + rename."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text_atomic(path, text):
    """Writes UTF-8 `text` to `path` atomically."""
    write_bytes_atomic(path, text.encode("utf8"))


def write_json_atomic(path, obj):
    """Writes `obj` as indented JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
