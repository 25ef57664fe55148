"""Artifacts on disk: one output policy, atomic writes, the run lock, model loading.

The package's only home for writing artifacts (docs/training.md "Output policy"):
- a write never replaces a non-empty directory, or a path of the other kind
  (a file where a directory is, or the reverse), unless the caller passes
  `overwrite=True` (the scripts' `--overwrite`); a file over a file is fine;
- bytes, text, JSON, a `.keras` save, a copy and a whole directory each go
  through a temporary name beside the target (`.tmp-<pid>-...`, fsynced) and a
  rename, so a reader sees the old artifact or the new one and a failed or
  interrupted write leaves the old one intact; temporary names of dead
  processes are removed by the next writer;
- artifacts get 0666 (directories 0777) less the user's umask, as any tool's;
- a refusal of the file system (read-only, full, no permission) is one
  `OutputError` naming the path, never a traceback;
- one writer per run directory: `lock_directory` (an OS lock, released when
  the process dies, however it dies).
"""

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from keras_effnet.errors import ConfigError, OutputError

if TYPE_CHECKING:  # annotations only: `--help` never imports Keras (issue 21)
    import keras

TEMP_PREFIX = ".tmp-"  # Every temporary name starts with this + the writer's pid + "-".
LOCK_NAME = ".lock"
_ASIDE = ".old"  # Suffix of the old artifact while `_swap_in` puts the new one in place.

# The errors a hostile file system gives: one line naming the path, not a traceback.
_FS_ERRNOS = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a parent is not a directory",
}


def as_output_error(error, path, argument="output", *, unchanged=True) -> OutputError | None:
    """The one-line `OutputError` of a file system refusal (`_FS_ERRNOS`), else None.

    `unchanged`: the write went through this module, so the old artifact is intact (say so).
    """
    if not isinstance(error, OSError):
        return None
    code = error.errno
    if code is None:  # h5py (Keras' weights files) puts the errno in its text only.
        found = re.search(r"errno = (\d+)", str(error))
        code = int(found.group(1)) if found else None
    if code not in _FS_ERRNOS:
        return None
    where = f" ({error.filename})" if error.filename and error.filename != path else ""
    return OutputError(
        f"Cannot write `{argument}` {os.fspath(path)!r}: {_FS_ERRNOS[code]}{where}."
        + (" What was there before is unchanged." if unchanged else "")
    )


@contextlib.contextmanager
def output_errors(path, argument="output") -> Iterator[None]:
    """Turns the file system's refusals (`_FS_ERRNOS`) into one `OutputError` naming `path`."""
    try:
        yield
    except OSError as e:
        refused = as_output_error(e, path, argument)
        if refused is None:
            raise
        raise refused from None


def _kind(path):
    if not os.path.lexists(path):
        return None
    return "directory" if os.path.isdir(path) and not os.path.islink(path) else "file"


def check_output(path, kind="file", *, overwrite=False, argument="output") -> str:
    """Refuses a write the user did not ask for, before any work is done.

    Args:
        path: the output path.
        kind: "file" or "directory" (what will be written there).
        overwrite: replace a non-empty directory or a path of the other kind.
        argument: the flag or argument named in the message.

    Returns:
        The absolute path. Temporary names of dead writers beside it are removed.

    Raises:
        OutputError: `path` is a non-empty directory or of the other kind, and
            `overwrite` is False.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    while parent != os.path.dirname(parent) and not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):  # Refused now, not after the work (tests/commands/test_probe.py).
        raise OutputError(
            f"Cannot write `{argument}` {path!r}: {parent!r}, a folder above it, is a file."
        )
    existing = _kind(path)
    if existing and not overwrite:
        if existing != kind:
            raise OutputError(
                f"`{argument}` {path!r} is an existing {existing}; refusing to replace it with a "
                f"{kind}. Pick another path, or pass --overwrite (overwrite=True) to replace it."
            )
        if kind == "directory" and os.listdir(path):
            raise OutputError(
                f"`{argument}` {path!r} is a non-empty directory; refusing to replace its "
                f"contents. Pick another path, or pass --overwrite (overwrite=True) to replace it."
            )
    remove_stale_temp_files(os.path.dirname(path), target=os.path.basename(path))
    return path


def makedirs(path, argument="output") -> None:
    """`os.makedirs(path, exist_ok=True)`, with the file system's refusals as `OutputError`."""
    with output_errors(path, argument):
        try:
            os.makedirs(path, exist_ok=True)
        except (
            FileNotFoundError
        ) as e:  # A parent that cannot hold directories (/proc, a gone mount).
            raise OSError(errno.EACCES, e.strerror, e.filename) from None
        except (FileExistsError, NotADirectoryError):  # The path, or a parent, is a file.
            raise OutputError(
                f"Cannot write `{argument}` {path!r}: it, or a folder above it, is a file."
            ) from None


def temp_path(path, suffix="") -> str:
    """A per-process temporary name beside `path` (same directory, so rename is atomic)."""
    directory, name = os.path.split(os.fspath(path))
    return os.path.join(directory or ".", f"{TEMP_PREFIX}{os.getpid()}-{name}{suffix}")


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _fsync_directory(directory):
    """Makes a rename durable; best effort: the artifact is already in place when it fails."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap_in(tmp, path):
    """Renames `tmp` to `path`; a directory (or a path of the other kind) is moved aside first.

    os.replace cannot overwrite a directory, nor put a directory over a file:
    the old one goes to a temporary name (removed by the next writer if this
    process dies here), the new one takes its place, then the old one is
    deleted; if the second rename fails the old one is put back.
    """
    if _kind(path) == "directory" or (_kind(path) and _kind(tmp) == "directory"):
        aside = temp_path(path, _ASIDE)
        os.replace(path, aside)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(aside, path)
            raise
        _remove(aside)
    else:
        os.replace(tmp, path)
    _fsync_directory(os.path.dirname(path))


@contextlib.contextmanager
def _temporary(path, suffix="", argument="output"):
    """Yields a temporary name beside `path`; removes it on any failure; file errors as one line."""
    tmp = temp_path(path, suffix)
    try:
        with output_errors(path, argument):
            yield tmp
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)


def write_bytes_atomic(path, data, *, overwrite=False, argument="output") -> None:
    """Writes `data` to `path` via a temporary file in the same directory + rename.

    Refused (`check_output`) when `path` is a directory unless `overwrite`.
    """
    path = check_output(path, "file", overwrite=overwrite, argument=argument)
    makedirs(os.path.dirname(path), argument)
    with _temporary(path, argument=argument) as tmp:
        # O_EXCL: never follow or reuse a name someone else left there.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _swap_in(tmp, path)


def write_text_atomic(path, text, **kwargs) -> None:
    """Writes UTF-8 `text` to `path` atomically (see `write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf8"), **kwargs)


def write_json_atomic(path, obj, **kwargs) -> None:
    """Writes `obj` as indented JSON to `path` atomically (see `write_bytes_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", **kwargs)


def _save_atomic(save, path, suffix, overwrite):
    """`save(tmp)` to a temporary name ending in `suffix` (Keras checks it), then rename."""
    path = check_output(path, "file", overwrite=overwrite)
    with _temporary(path, suffix) as tmp:
        save(tmp)
        _swap_in(tmp, path)


def save_model_atomic(model, path, *, overwrite=False) -> None:
    """`model.save(path)` through a temporary .keras file in the same directory."""
    _save_atomic(model.save, path, ".keras", overwrite)


def save_weights_atomic(model, path, *, overwrite=False) -> None:
    """`model.save_weights(path)` through a temporary .weights.h5 file in the same directory."""
    _save_atomic(
        lambda tmp: model.save_weights(tmp, overwrite=True), path, ".weights.h5", overwrite
    )


def copy_atomic(src, dst, *, overwrite=False) -> None:
    """Copies `src` to `dst`; readers see the old or the new file, never half of one."""
    dst = check_output(dst, "file", overwrite=overwrite)
    with _temporary(dst) as tmp:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _swap_in(tmp, dst)


@contextlib.contextmanager
def atomic_directory(path, *, overwrite=False, argument="output") -> Iterator[str]:
    """Yields a temporary directory beside `path`; on success it becomes `path`.

    Refused (`check_output`) when `path` is a non-empty directory or a file,
    unless `overwrite` (then the old one is replaced whole, on success only).
    On an exception the temporary directory is removed and `path` is left as it was.
    """
    path = check_output(path, "directory", overwrite=overwrite, argument=argument)
    makedirs(os.path.dirname(path), argument)
    with _temporary(path, argument=argument) as tmp:
        os.mkdir(tmp)  # 0777 less the umask, as any directory.
        yield tmp
        _swap_in(tmp, path)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(directory, target=None) -> list[str]:
    """Deletes temporary files and directories a killed process left in `directory`.

    Returns the names removed. Only names made by `temp_path` (prefix
    `TEMP_PREFIX` + the writer's pid + "-"), of a process that is no longer
    running, are touched (workers of one multi-worker run share a directory
    and write at the same time); with `target`, only those for that name.
    An old artifact set aside by a writer killed mid-swap is put back when
    nothing took its place. Not recursive.
    """
    if not os.path.isdir(directory):
        return []
    stale = []
    for name in os.listdir(directory):
        if not name.startswith(TEMP_PREFIX):
            continue
        pid, _, rest = name[len(TEMP_PREFIX) :].partition("-")
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        if target is not None and not rest.startswith(target):
            continue
        path = os.path.join(directory, name)
        original = os.path.join(directory, rest[: -len(_ASIDE)])
        with contextlib.suppress(OSError):
            if rest.endswith(_ASIDE) and not os.path.lexists(original):
                # Killed between the two renames of `_swap_in`: this is the only copy of the
                # old artifact, so it goes back, not away.
                os.replace(path, original)
            else:
                _remove(path)
            stale.append(name)
    return stale


class DirectoryLock:
    """An exclusive OS lock (`fcntl.flock`) on `<directory>/.lock`, held until `release`.

    The kernel drops the lock when the process ends, however it ends (a
    SIGKILL too), so a stale lock never blocks the next run. The file holds
    the holder's pid, for the message of the process that is refused.
    """

    def __init__(self, directory, argument="model_dir"):
        self.path = os.path.join(directory, LOCK_NAME)
        with output_errors(self.path, argument):
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(self._fd)
            raise OutputError(
                f"`{argument}` {directory!r} is in use by another process (PID {holder}): one "
                f"run directory has one writer. Wait for it to end, or use another --{argument}."
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # Closing the last descriptor releases the flock.
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def lock_directory(directory, argument="model_dir") -> DirectoryLock:
    """Takes the one-writer lock of `directory` (see `DirectoryLock`); raises `OutputError`."""
    return DirectoryLock(os.fspath(directory), argument)


def load_model(path, argument="model") -> "keras.Model":
    """Loads a `.keras` file (ours or any Keras 3 model), with one clear error when it cannot.

    Args:
        path: the file.
        argument: the argument or flag name the error message names.

    Raises:
        ConfigError: missing file, a file that is not a readable .keras
            archive (truncated, another format), or one whose config cannot
            be rebuilt (an unknown class, an invalid layer argument).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"`{argument}`: no such file. Received: {argument}={path!r}")
    if not zipfile.is_zipfile(path):
        raise ConfigError(
            f"`{argument}` is not a readable .keras archive (truncated, or not a Keras 3 model "
            f"file). Received: {argument}={path!r}"
        )
    try:
        import keras  # Here, not at the top: `--help` never imports Keras (issue 21).

        import keras_effnet.core.layers  # noqa: F401  (registers our layers for deserialization)

        return keras.saving.load_model(path, compile=False)
    except (zipfile.BadZipFile, OSError, KeyError, EOFError) as e:
        raise ConfigError(
            f"`{argument}` is not a readable .keras archive ({type(e).__name__}: {e}). "
            f"Received: {argument}={path!r}"
        ) from None
    except (TypeError, ValueError, AttributeError) as e:
        # An untrusted or broken config (unknown class, invalid layer argument):
        # Keras raises these with pages of config; one line names the file and the cause.
        raise ConfigError(
            f"`{argument}` {path!r} holds a model Keras cannot rebuild: {_keras_cause(e)}"
        ) from None


def _keras_cause(error, limit=300):
    """The innermost cause of a Keras deserialization error, with the layer it is in.

    Keras nests one "could not be deserialized properly" per level, each with
    the whole config; the cause is the last "Exception encountered:" part.
    """
    text = str(error)
    causes = re.findall(r"Exception encountered: (.+?)(?:\. Make sure|\. Full object|\n|$)", text)
    cause = causes[-1] if causes else (text.strip().splitlines() or [type(error).__name__])[0]
    layer = re.findall(r"deserializing class '(\w+)' using config=\{'name': '([^']+)'", text)
    where = f" (layer {layer[-1][1]!r}, a {layer[-1][0]})" if layer else ""
    cause = cause if len(cause) <= limit else cause[:limit] + "..."
    return cause + where
