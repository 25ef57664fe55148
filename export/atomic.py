"""Atomic writes: a reader sees the old artifact or the new one, never half."""

import contextlib
import json
import os
import shutil
import tempfile

from keras_effnet import io as io_lib


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path, data):
    """Writes `data` to `path` via a temp file in the same dir + os.replace."""
    io_lib.write_bytes_atomic(path, data)


def write_json(path, obj):
    """Writes `obj` as indented JSON, atomically."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


@contextlib.contextmanager
def directory(path):
    """Yields a temp dir beside `path`; on success it replaces `path` whole.

    On an exception the temp dir is removed and `path` is left as it was.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-" + os.path.basename(path))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(path):
        # os.replace cannot overwrite a non-empty directory: move the old one
        # aside first, so the swap is two renames and no copy.
        old = tempfile.mkdtemp(dir=parent, prefix=".old-")
        os.rmdir(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old:
        shutil.rmtree(old, ignore_errors=True)
