"""Artifacts on disk: atomic writes (a crash never leaves a half-written file) and model loading.

The package's only home for writing artifacts: bytes, text, JSON, a whole
directory, a `.keras` save and a copy, each through a temporary name beside the
target and a rename, so a reader sees the old artifact or the new one.
"""

import contextlib
import json
import os
import shutil
import tempfile
import zipfile

import keras


def write_bytes_atomic(path, data):
    """Writes `data` to `path` via a temporary file in the same directory + rename."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=os.path.basename(path)
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; a file written any other way gets 0666 less the umask.
        os.chmod(tmp, 0o666 & ~_umask())
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


TEMP_PREFIX = ".tmp-"  # Every temporary name starts with this (see remove_stale_temp_files).


def temp_path(path, suffix=""):
    """A per-process temporary name beside `path` (same directory, so rename is atomic)."""
    directory, name = os.path.split(os.fspath(path))
    return os.path.join(directory or ".", f"{TEMP_PREFIX}{os.getpid()}-{name}{suffix}")


def _save_atomic(save, path, suffix):
    """`save(tmp)` to a temporary name ending in `suffix` (Keras checks it), then rename."""
    tmp = temp_path(path, suffix)
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_model_atomic(model, path):
    """`model.save(path)` through a temporary .keras file in the same directory."""
    _save_atomic(model.save, path, ".keras")


def save_weights_atomic(model, path):
    """`model.save_weights(path)` through a temporary .weights.h5 file in the same directory."""
    _save_atomic(lambda tmp: model.save_weights(tmp, overwrite=True), path, ".weights.h5")


def copy_atomic(src, dst):
    """Copies `src` to `dst`; readers see the old or the new file, never half of one."""
    tmp = temp_path(dst)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a temporary directory beside `path`; on success it replaces `path` whole.

    On an exception the temporary directory is removed and `path` is left as it was.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=TEMP_PREFIX + os.path.basename(path))
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


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(directory):
    """Deletes temporary files a killed process left in `directory` (not recursive).

    Returns the names removed. Only names made by `temp_path` or
    `write_bytes_atomic` (prefix `TEMP_PREFIX` + the writer's pid) are touched,
    and none of a process that is still running: workers of one multi-worker
    run share the directory and write at the same time.
    """
    if not os.path.isdir(directory):
        return []
    stale = []
    for name in os.listdir(directory):
        if not name.startswith(TEMP_PREFIX):
            continue
        pid = name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            os.remove(path)
            stale.append(name)
    return stale


def load_model(path, argument="model"):
    """Loads a `.keras` file (ours or any Keras 3 model), with one clear error when it cannot.

    Args:
        path: the file.
        argument: the argument or flag name the error message names.

    Raises:
        ValueError: missing file, or a file that is not a readable .keras
            archive (truncated, another format).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"`{argument}`: no such file. Received: {argument}={path!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"`{argument}` is not a readable .keras archive (truncated, or not a Keras 3 model "
            f"file). Received: {argument}={path!r}"
        )
    try:
        # Our layers are registered: importing this module ran keras_effnet/__init__.
        return keras.saving.load_model(path, compile=False)
    except (zipfile.BadZipFile, OSError, KeyError, EOFError) as e:
        raise ValueError(
            f"`{argument}` is not a readable .keras archive ({type(e).__name__}: {e}). "
            f"Received: {argument}={path!r}"
        ) from None
