"""keras_effnet.io: the output policy, atomic writes under injected faults, the run lock."""

import errno
import os
import subprocess
import sys
import zipfile

import pytest

from keras_effnet import io
from keras_effnet.errors import ConfigError, OutputError

from helpers import snapshot


def _make_tree(root):
    """A file, an empty and a non-empty directory, side by side."""
    root.mkdir(exist_ok=True)
    (root / "file.tflite").write_bytes(b"old model")
    (root / "empty").mkdir()
    (root / "run").mkdir()
    (root / "run" / "results.json").write_text("{}")
    return root


@pytest.fixture
def tree(tmp_path):
    return _make_tree(tmp_path / "tree")


def _writers(path, **kwargs):
    def directory():
        with io.atomic_directory(path, **kwargs) as tmp:
            with open(os.path.join(tmp, "saved_model.pb"), "wb") as f:
                f.write(b"new")

    def keras_save():
        import keras

        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        io.save_model_atomic(model, path, **kwargs)

    return {
        "keras": keras_save,
        "bytes": lambda: io.write_bytes_atomic(path, b"new", **kwargs),
        "json": lambda: io.write_json_atomic(path, {"new": 1}, **kwargs),
        "directory": directory,
    }


@pytest.mark.parametrize(
    "writer, target",  # A file over a file is an ordinary (atomic) replacement: not here.
    [("bytes", "run"), ("json", "run"), ("directory", "run"), ("directory", "file.tflite")],
)
def test_refused_writes_leave_every_byte(tree, writer, target):
    """A file over a directory, a directory over a file or a non-empty directory: refused."""
    before = snapshot(tree)
    with pytest.raises(OutputError, match="--overwrite"):
        _writers(str(tree / target))[writer]()
    assert snapshot(tree) == before


def test_overwrite_replaces_without_litter(tree):
    _writers(str(tree / "run"), overwrite=True)["bytes"]()
    assert (tree / "run").read_bytes() == b"new"
    _writers(str(tree / "file.tflite"), overwrite=True)["directory"]()
    assert (tree / "file.tflite" / "saved_model.pb").read_bytes() == b"new"
    _writers(str(tree / "empty"))["directory"]()  # An empty directory needs no --overwrite.
    assert sorted(os.listdir(tree)) == ["empty", "file.tflite", "run"]


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        io.write_bytes_atomic(tmp_path / "a.bin", b"x")
        with io.atomic_directory(tmp_path / "d"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750


def _fail_at(monkeypatch, name, at, error=errno.ENOSPC):
    """Makes the `at`-th call of os.`name` (as io sees it) fail like a full disk."""
    real = getattr(os, name)
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at:
            raise OSError(error, os.strerror(error))
        return real(*args, **kwargs)

    monkeypatch.setattr(io.os, name, flaky)
    return calls


@pytest.mark.parametrize("name", ["replace", "fsync"])
@pytest.mark.parametrize("writer", ["bytes", "directory", "keras"])
@pytest.mark.parametrize("target", ["file.tflite", "run"])
def test_a_fault_at_every_replace_and_fsync_keeps_the_old_artifact(
    tmp_path, monkeypatch, name, writer, target
):
    """SQLite-style: fail each os.replace / os.fsync in turn: the old artifact or the new, no litter.

    A fault before the commit (the rename) must leave every byte as it was and
    raise one line; one after it (the directory's fsync) leaves the new artifact.
    """
    for at in range(1, 20):
        root = _make_tree(tmp_path / str(at))
        before = snapshot(root)
        calls = _fail_at(monkeypatch, name, at)
        try:
            _writers(str(root / target), overwrite=True)[writer]()
        except OutputError as e:
            assert "no space left on device" in str(e)
            assert snapshot(root) == before, f"call {at} of os.{name}"
        else:
            if writer == "keras":
                assert zipfile.is_zipfile(root / target), f"call {at} of os.{name}"
            else:
                changed = (
                    root / target / "saved_model.pb" if writer == "directory" else root / target
                )
                assert changed.read_bytes() == b"new", f"call {at} of os.{name}"
        finally:
            monkeypatch.undo()
        assert not [n for n in os.listdir(root) if n.startswith(io.TEMP_PREFIX)]
        if calls["n"] < at:  # No fault was injected: every call site has been tried.
            break
    assert at >= 2, f"os.{name} was never called"


def test_file_system_refusals_are_one_line(tmp_path, monkeypatch):
    for code, words in [
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "permission denied"),
        (errno.ENOSPC, "no space left on device"),
    ]:
        _fail_at(monkeypatch, "open", 1, code)
        with pytest.raises(OutputError, match=words) as raised:
            io.write_json_atomic(tmp_path / "out.json", {})
        monkeypatch.undo()
        assert "out.json" in str(raised.value) and "\n" not in str(raised.value)
    assert os.listdir(tmp_path) == []
    assert issubclass(OutputError, ConfigError)


def _dead_pid():
    """The pid of a process that has ended."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path):
    # A dead writer's half file and aside copy of "model" (put back: nothing took its place).
    dead = _dead_pid()
    (tmp_path / f".tmp-{dead}-last.keras.keras").write_bytes(b"half")
    (tmp_path / f".tmp-{dead}-model.old").mkdir()
    (tmp_path / f".tmp-{os.getppid()}-live").write_bytes(b"a running writer's")
    io.write_bytes_atomic(tmp_path / "last.keras", b"whole")  # Its own name only.
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f".tmp-{dead}-model.old", f".tmp-{os.getppid()}-live", "last.keras"]
    )
    assert io.remove_stale_temp_files(tmp_path) == [f".tmp-{dead}-model.old"]
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f".tmp-{os.getppid()}-live", "last.keras", "model"]
    )


def test_an_old_artifact_set_aside_by_a_killed_writer_is_put_back(tmp_path):
    dead = _dead_pid()
    aside = tmp_path / f".tmp-{dead}-saved_model.old"  # Killed between the two renames.
    aside.mkdir()
    (aside / "saved_model.pb").write_bytes(b"the only copy")
    io.remove_stale_temp_files(tmp_path)
    assert (tmp_path / "saved_model" / "saved_model.pb").read_bytes() == b"the only copy"
    assert os.listdir(tmp_path) == ["saved_model"]


def _in_child(fn):
    """Runs `fn()` in a forked process (no TensorFlow there); returns what it printed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        try:
            os.write(write, str(fn()).encode())
        except BaseException as e:  # noqa: BLE001
            os.write(write, f"{type(e).__name__}: {e}".encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        return f.read()


def test_a_second_writer_is_refused_with_the_pid(tmp_path):
    with io.lock_directory(tmp_path):
        said = _in_child(lambda: io.lock_directory(tmp_path))
    assert said.startswith("OutputError: ") and f"(PID {os.getpid()})" in said
    # A holder that dies without releasing: the kernel drops its lock.
    assert _in_child(lambda: io.lock_directory(tmp_path) and "locked") == "locked"
    with io.lock_directory(tmp_path):
        pass


@pytest.mark.slow
def test_sigkill_at_random_points_of_an_export_loses_nothing(tmp_path):
    """SIGKILL an export at random moments: the earlier .tflite stays whole; the next run tidies."""
    import random
    import signal
    import time

    import keras_effnet

    model = keras_effnet.build_efficientnet(
        0.25, 0.25, 224, input_shape=(32, 32, 3), classes=10, weights=None, name="tiny"
    )
    model.save(tmp_path / "m.keras")
    out = tmp_path / "m.tflite"
    out.write_bytes(b"previous export")
    script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts", "export_tflite.py")
    cmd = [
        sys.executable,
        script,
        f"--model={tmp_path / 'm.keras'}",
        "--mode=fp32",
        f"--output={out}",
        "--dataset=digits",
        "--test_limit=8",
        "--latency_runs=0",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    rng = random.Random(20)
    for delay in (rng.uniform(4, 12), rng.uniform(12, 25)):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = out.read_bytes()
        assert data == b"previous export" or data[4:8] == b"TFL3", f"torn file after {delay:.1f}s"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_bytes()[4:8] == b"TFL3"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(io.TEMP_PREFIX)]


def test_check_output_refuses_a_path_below_a_file_before_any_work(tmp_path):
    (tmp_path / "a.png").write_bytes(b"image")
    with pytest.raises(OutputError, match=r"`output` .*a folder above it, is a file"):
        io.check_output(tmp_path / "a.png" / "deeper" / "x.tflite")
    assert io.check_output(tmp_path / "new" / "x.tflite") == str(tmp_path / "new" / "x.tflite")
    assert os.listdir(tmp_path) == ["a.png"]
