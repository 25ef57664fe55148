"""keras_effnet.training.rundir: one writer, finished runs untouched, moved runs, changed data.

One tiny run (B0 at width/depth 0.25, 32 px, one step on a 2-class folder of
16 images) is trained once per module, in process; every test works on a copy.
The Ctrl-C / SIGTERM runs of scripts/train.py are subprocesses and slow.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_effnet import data, io
from keras_effnet.errors import ConfigError, OutputError
from keras_effnet.training import config as config_lib
from keras_effnet.training import plan, rundir, train

import helpers

REPO = helpers.REPO
TINY = dict(
    model="b0",
    width=0.25,
    depth=0.25,
    image_size=32,
    batch_size=8,
    epochs=1,
    steps_per_epoch=1,
    bn_images=0,
    verbose=0,
)


def _folder(root, classes=2, per_class=8):
    for split in ("train", "test"):
        for c in range(classes):
            (root / split / f"c{c}").mkdir(parents=True, exist_ok=True)
            for i in range(per_class if split == "train" else 2):
                image = np.full((8, 8, 3), 60 * c + i, np.uint8)
                (root / split / f"c{c}" / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    return str(root)


def _config(dataset, model_dir, **flags):
    return config_lib.config_from_flags(
        {**TINY, "dataset": dataset, "model_dir": str(model_dir), **flags}
    )


def _files(model_dir):
    """Every file of a run directory but the lock, as bytes."""
    found = {}
    for directory, _, names in os.walk(model_dir):
        for name in names:
            path = os.path.join(directory, name)
            if name != io.LOCK_NAME:
                with open(path, "rb") as f:
                    found[os.path.relpath(path, model_dir)] = f.read()
    return found


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rundir")
    dataset = _folder(root / "data")
    train(_config(dataset, root / "run"))
    return dataset, root / "run"


@pytest.fixture
def run(finished_run, tmp_path):
    """A copy of the finished run and its dataset at new paths (so: moved)."""
    dataset, model_dir = finished_run
    shutil.copytree(dataset, tmp_path / "data")
    shutil.copytree(model_dir, tmp_path / "run")
    return str(tmp_path / "data"), tmp_path / "run"


def test_a_finished_run_rerun_changes_no_byte_even_moved(run, capsys):
    dataset, model_dir = run
    before = _files(model_dir)
    result = train(_config(dataset, model_dir, verbose=1))
    assert "is a finished run (1 epochs); its files are unchanged" in capsys.readouterr().out
    assert _files(model_dir) == before
    assert result.model_dir == os.path.abspath(model_dir) and result.epochs_completed == 1


def test_added_class_is_refused_before_any_write(run):
    dataset, model_dir = run
    before = _files(model_dir)
    _folder(pathlib.Path(dataset), classes=3)  # c2 joins c0 and c1.
    with pytest.raises(ConfigError, match=r"dataset classes: 2 -> 3 \(added \['c2'\]\)"):
        train(_config(dataset, model_dir))
    assert _files(model_dir) == before


def test_a_second_writer_is_refused_with_the_pid(run):
    dataset, model_dir = run
    before = _files(model_dir)
    with io.lock_directory(model_dir):  # flock: a second open file conflicts, same process too.
        with pytest.raises(OutputError, match=f"in use by another process \\(PID {os.getpid()}\\)"):
            train(_config(dataset, model_dir))
    assert _files(model_dir) == before


def test_a_refused_run_leaves_no_new_directory(run, tmp_path):
    dataset, _ = run
    with pytest.raises(ConfigError, match="--image_size=8000 with --batch_size=8 cannot fit"):
        train(_config(dataset, tmp_path / "new", image_size=8000))
    assert not (tmp_path / "new").exists()


def _train_script(model_dir, *extra):
    return [
        sys.executable,
        os.path.join(REPO, "scripts", "train.py"),
        "--model=b0",
        "--width=0.25",
        "--depth=0.25",
        "--image_size=32",
        "--batch_size=16",
        "--steps_per_epoch=2",
        "--bn_images=0",
        "--verbose=2",
        "--epochs=40",
        f"--model_dir={model_dir}",
        *extra,
    ]


@pytest.mark.slow
def test_ctrl_c_and_sigterm_exit_cleanly_and_the_run_resumes(tmp_path):
    model_dir = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    for signum, code, word in [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")]:
        proc = subprocess.Popen(
            _train_script(model_dir),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # A pytest-xdist worker ignores SIGINT and a child inherits that: start the
            # command with the default handler, as a shell does.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        # The resume point is the backup's metadata, written after last.keras in each epoch.
        saved = model_dir / "backup" / "training_metadata.json"
        start = os.path.getmtime(saved) if signum == signal.SIGTERM else 0
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if saved.exists() and os.path.getmtime(saved) > start:
                break
            time.sleep(0.05)
        time.sleep(0.3)  # Mid-epoch or mid-save: either must end cleanly.
        proc.send_signal(signum)
        out = proc.communicate(timeout=120)[0].decode()
        assert proc.returncode == code, out[-3000:]
        assert f"train.py: stopped by {word}." in out and "re-run the same command" in out
        assert "Traceback" not in out
        assert not [n for n in os.listdir(model_dir) if n.startswith(io.TEMP_PREFIX)]
        io.load_model(model_dir / "last.keras")  # The last good checkpoint is whole.
    assert "resuming after epoch" in out


def test_a_folder_of_other_files_is_refused_and_left_alone(tmp_path):
    from keras_effnet.training import rundir  # pylint: disable=import-outside-toplevel

    (tmp_path / "mine.txt").write_text("the user's\n")
    with pytest.raises(ConfigError, match="holds no run"):
        with rundir.claim(str(tmp_path), str(tmp_path)):
            pass
    assert os.listdir(tmp_path) == ["mine.txt"]
    with pytest.raises(OutputError, match="is a file"):
        io.makedirs(str(tmp_path / "mine.txt" / "run"), "model_dir")


def test_a_moved_unfinished_run_resumes(run, capsys):
    """Killed after its last backup, before results.json: the copy elsewhere resumes."""
    dataset, model_dir = run
    os.remove(model_dir / "results.json")
    result = train(_config(dataset, model_dir, verbose=1))
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert result.initial_epoch == 1 and (model_dir / "results.json").exists()


def test_a_refusal_after_training_keeps_the_new_run(tmp_path):
    """A ConfigError once an epoch is saved (say, the final evaluation's) deletes nothing."""
    from keras_effnet.training import rundir

    for trained in (False, True):
        model_dir = str(tmp_path / f"new_{trained}")
        with pytest.raises(ConfigError), rundir.claim(model_dir, model_dir):
            if trained:
                (tmp_path / f"new_{trained}" / "last.keras").write_bytes(b"an epoch's model")
            raise ConfigError("Split 'test' of dataset is empty.")
        assert os.path.exists(model_dir) == trained


def test_a_second_workers_backup_does_not_make_the_run_foreign(tmp_path):
    """Worker 1 of a multi-worker run may claim `backup_worker1` before the chief claims the run."""
    from keras_effnet.training import rundir  # pylint: disable=import-outside-toplevel

    (tmp_path / "backup_worker1").mkdir()
    with rundir.claim(str(tmp_path), str(tmp_path)):
        pass
    (tmp_path / "backup_worker1x").mkdir()
    with pytest.raises(ConfigError, match="holds no run"):
        with rundir.claim(str(tmp_path), str(tmp_path)):
            pass


def test_a_run_recorded_before_the_run_plan_resumes_and_its_splits_are_compared(tmp_path):
    """config.json as the previous version wrote it: {"config", "derived"} with a moved folder."""
    dataset = _folder(tmp_path / "data")
    info = data.dataset_info(dataset)
    run_plan = plan.resolve(_config(dataset, tmp_path / "run"), info, 1)
    old_config = run_plan.config.replace(data={"dataset": "/elsewhere/data"})
    old_derived = {
        "num_replicas": 1,
        "global_batch_size": 8,
        "steps_per_epoch": 1,
        "total_steps": 1,
        "peak_learning_rate": 0.00025,
        "warmup_steps": 0,
        "num_classes": 2,
        "dataset_kind": "folder",  # So the folder's path is not part of the run's identity.
        "splits": dict(info.splits),
        "split_sources": dict(info.sources),
        "progressive": {"reason": "auto: x", "stages": [s.to_dict() for s in run_plan.stages]},
        "versions": {"tensorflow": "2.20.0", "keras": "3.14.0"},
        "strategy": "OneDeviceStrategy (1 replica)",
    }
    model_dir = tmp_path / "run"
    (model_dir / "backup").mkdir(parents=True)
    (model_dir / "backup" / "training_metadata.json").write_text("{}")

    def record(derived):
        text = json.dumps({"config": old_config.to_dict(), "derived": derived})
        (model_dir / "config.json").write_text(text)

    record(old_derived)
    assert rundir.check_resume(str(model_dir), run_plan, info.class_names) is True
    record({**old_derived, "splits": {**old_derived["splits"], "train": 99}})
    with pytest.raises(ConfigError, match=r"dataset split sizes: .*'train': 99"):
        rundir.check_resume(str(model_dir), run_plan, info.class_names)
    record({**old_derived, "dataset_kind": "tfds"})  # A dataset named by path: compared.
    with pytest.raises(ConfigError, match=r"data.dataset: '/elsewhere/data' -> "):
        rundir.check_resume(str(model_dir), run_plan, info.class_names)
