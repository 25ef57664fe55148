"""Real training runs through scripts/train.py: artifacts, resume after SIGKILL,
2-replica MirroredStrategy, 2-process MultiWorkerMirroredStrategy, fine-tuning.

Every run trains a tiny EfficientNet (B0 scaled to width/depth 0.25) at 32x32
on the offline digits for a few dozen steps, in subprocesses so TensorFlow
device setup (logical CPUs, TF_CONFIG) starts fresh.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import helpers

REPO = helpers.REPO
TRAIN = os.path.join(REPO, "scripts", "train.py")
TINY = [
    "--model=b0",
    "--width=0.25",
    "--depth=0.25",
    "--image_size=32",
    "--batch_size=16",
    "--verbose=2",
]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def _train_cmd(model_dir, *extra):
    return [sys.executable, TRAIN, *TINY, f"--model_dir={model_dir}", *extra]


def _run(cmd, timeout=300, env=ENV):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _epochs_run(stdout):
    """Epoch numbers Keras printed ("Epoch 3/4" -> 3)."""
    return [
        int(line.split()[1].split("/")[0])
        for line in stdout.splitlines()
        if line.startswith("Epoch ")
    ]


def _json(path):
    with open(path) as f:
        return json.load(f)


def _load_and_predict(path, size=32):
    import keras

    import keras_effnet  # noqa: F401  (registers the MBConv layers for loading)

    model = keras.saving.load_model(path, compile=False)
    x = np.random.default_rng(0).uniform(0, 255, (3, size, size, 3)).astype("float32")
    return model, model.predict(x, verbose=0)


def _kill_when(cmd, ready, deadline_s=300):
    """Starts `cmd`, SIGKILLs it as soon as `ready()` is true; returns its output."""
    proc = subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + deadline_s
    try:
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        out = proc.communicate()[0]
    assert proc.returncode == -signal.SIGKILL, "the run ended before the kill: " + out[-2000:]
    return out


def _metrics(path):
    """history.csv rows without the wall-clock columns."""
    with open(path) as f:
        return [
            {k: v for k, v in row.items() if k != "images_per_sec" and not k.endswith("_time_s")}
            for row in csv.DictReader(f)
        ]


def _assert_same_metrics(got_rows, want_rows):
    assert len(got_rows) == len(want_rows)
    for got, want in zip(got_rows, want_rows):
        for key in want:
            assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-4, abs=1e-5), (
                key,
                got,
                want,
            )


def _backup_epoch(run):
    meta = run / "backup" / "training_metadata.json"
    try:
        return _json(meta)["epoch"]
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_and_resume_then_artifacts_and_fine_tuning(tmp_path):
    args = ["--epochs=4", "--steps_per_epoch=25", "--strategy=cpu", "--augment=crop,flip,mixup"]
    clean = tmp_path / "clean"
    _run(_train_cmd(clean, *args))
    run = tmp_path / "run"
    cmd = _train_cmd(run, *args)

    # Kill 1: in the middle of epoch 2 (epoch 1 backed up).
    _kill_when(cmd, lambda: _backup_epoch(run) >= 1 and time.sleep(1.0) is None)
    done = _backup_epoch(run)
    assert 1 <= done < 4
    before = _metrics(run / "history.csv")

    # Kill 2: during a save of epoch 3 or later (a temporary file exists), or
    # right after epoch 3's backup if no save was caught in the act.
    def saving():
        names = os.listdir(run) + os.listdir(run / "backup")
        return _backup_epoch(run) >= 3 or (
            _backup_epoch(run) >= 2 and any(n.startswith(".tmp-") for n in names)
        )

    _kill_when(cmd, saving)
    second_done = _backup_epoch(run)
    assert second_done >= 2

    last_out = _run(cmd)
    # The epoch counter continues; completed epochs are not redone.
    assert _epochs_run(last_out) == list(range(second_done + 1, 5))
    result = _json(run / "results.json")
    assert result["initial_epoch"] == second_done and result["epochs_completed"] == 4
    assert result["optimizer_steps"] == 4 * 25  # Optimizer state (step, LR, EMA) restored too.
    after = _metrics(run / "history.csv")
    assert [int(r["epoch"]) for r in after] == [0, 1, 2, 3]
    assert after[: len(before)] == before  # Epochs finished before a kill are kept as written.
    # A resumed run is the uninterrupted run: same metrics every epoch (input
    # stream, dropout masks, optimizer, EMA and BatchNorm sample all restored).
    _assert_same_metrics(after, _metrics(clean / "history.csv"))
    clean_top1 = _json(clean / "results.json")["metrics"]["top1"]
    assert abs(result["metrics"]["top1"] - clean_top1) <= 0.02
    for directory in (run, run / "backup"):  # Stale temporary files were removed on restart.
        assert not [f for f in os.listdir(directory) if f.startswith(".tmp-")]
    assert "splits: train" in last_out and "resuming after epoch" in last_out

    # Artifacts of a finished run.
    config = _json(run / "config.json")
    assert (
        config["config"]["data"]["image_size"] == 32 and config["config"]["model"]["name"] == "b0"
    )
    assert (
        config["derived"]["steps_per_epoch"] == 25 and config["derived"]["global_batch_size"] == 16
    )
    assert 0 < config["config"]["optimizer"]["ema_momentum"] < 0.9999  # Auto EMA for a short run.
    assert (run / "labels.txt").read_text().split() == [str(i) for i in range(10)]
    assert any(name.startswith("events") for _, _, files in os.walk(run / "logs") for name in files)
    for name in ("best.keras", "last.keras"):
        model, probs = _load_and_predict(str(run / name))
        assert probs.shape == (3, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert result["metrics"]["num_examples"] == 270 and result["metrics"]["split"] == "test"
    assert "keras-effnet train:" in last_out and "img/s" in last_out

    # scripts/evaluate.py scores best.keras exactly as the run's final evaluation.
    eval_json = tmp_path / "eval.json"
    eval_out = _run(
        [
            sys.executable,
            os.path.join(REPO, "scripts", "evaluate.py"),
            f"--model_path={run / 'best.keras'}",
            "--dataset=digits",
            "--split=test",
            f"--output_json={eval_json}",
        ]
    )
    assert "top1" in eval_out and "best.keras" in eval_out
    assert _json(eval_json)["top1"] == pytest.approx(result["metrics"]["top1"])

    # Re-running a finished run trains nothing, says so and changes no file (issue 20).
    results_bytes = (run / "results.json").read_bytes()
    third_out = _run(cmd)
    assert _epochs_run(third_out) == [] and "is a finished run" in third_out
    assert (run / "results.json").read_bytes() == results_bytes
    # Same directory, different recipe: refused, one line, no traceback.
    bad = subprocess.run(
        _train_cmd(run, "--epochs=4", "--steps_per_epoch=25", "--base_lr=0.1"),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "different configuration" in bad.stderr and "optimizer.base_lr" in bad.stderr

    # Fine-tuning from the run with frozen BatchNorm (and bfloat16 compute):
    # statistics unchanged, classifier trained, saved model float32.
    tuned = tmp_path / "tuned"
    _run(
        _train_cmd(
            tuned,
            "--epochs=1",
            "--steps_per_epoch=5",
            "--strategy=cpu",
            f"--weights={run / 'last.keras'}",
            "--freeze_bn",
            "--precision=mixed_bfloat16",
        )
    )
    source, _ = _load_and_predict(str(run / "last.keras"))
    target, _ = _load_and_predict(str(tuned / "last.keras"))
    bn = "block2a_bn" if "block2a_bn" in [l.name for l in source.layers] else "stem_bn"
    for a, b in zip(source.get_layer(bn).get_weights(), target.get_layer(bn).get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(
        source.get_layer("predictions").get_weights()[0],
        target.get_layer("predictions").get_weights()[0],
    )
    assert {layer.dtype_policy.name for layer in target.layers} == {"float32"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_progressive_run_killed_in_its_second_stage_resumes_exactly(tmp_path):
    # Two stages of two epochs: 32 px (dropout 0.1, no MixUp), then 64 px at the targets.
    args = [
        "--epochs=4",
        "--steps_per_epoch=10",
        "--strategy=cpu",
        "--augment=crop,flip,mixup",
        "--image_size=64",
        "--progressive=on",
        "--progressive_stages=2",
    ]
    clean = tmp_path / "clean"
    clean_out = _run(_train_cmd(clean, *args))
    assert "progressive: 2 stages, 32 -> 64 px" in clean_out and "stage 2/2: 64 px" in clean_out
    run = tmp_path / "run"
    cmd = _train_cmd(run, *args)
    # Killed after the first stage (epoch 2 backed up), inside the second one.
    _kill_when(cmd, lambda: _backup_epoch(run) >= 2 and time.sleep(1.0) is None)
    done = _backup_epoch(run)
    assert 2 <= done < 4
    assert _json(run / "backup" / "training_metadata.json")["progressive_stage"]["image_size"] == (
        32 if done == 2 else 64
    )
    last_out = _run(cmd)
    assert _epochs_run(last_out) == list(range(done + 1, 5))
    assert "stage 1/2" not in last_out and "stage 2/2: 64 px, dropout 0.2" in last_out
    after = _metrics(run / "history.csv")
    assert [int(float(r["image_size"])) for r in after] == [32, 32, 64, 64]
    _assert_same_metrics(after, _metrics(clean / "history.csv"))
    result = _json(run / "results.json")
    assert result["optimizer_steps"] == 40 and result["initial_epoch"] == done
    assert result["metrics"]["top1"] == pytest.approx(
        _json(clean / "results.json")["metrics"]["top1"], abs=0.02
    )
    config = _json(run / "config.json")
    assert config["config"]["data"]["progressive"] == "on"
    assert [s["image_size"] for s in config["derived"]["progressive"]["stages"]] == [32, 64]
    for name in ("best.keras", "last.keras"):  # Saved at the final size.
        model, probs = _load_and_predict(str(run / name), size=64)
        assert model.input_shape == (None, 64, 64, 3) and probs.shape == (3, 10)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_mirrored_two_replicas_on_split_cpu(tmp_path):
    run = tmp_path / "mirrored"
    out = _run(
        _train_cmd(
            run,
            "--epochs=3",
            "--steps_per_epoch=20",
            "--strategy=mirrored",
            "--cpu_devices=2",
            "--sync_bn",
            "--augment=crop,flip,mixup",
        )
    )
    derived = _json(run / "config.json")["derived"]
    assert derived["num_replicas"] == 2 and derived["global_batch_size"] == 32
    assert derived["strategy"].startswith("MirroredStrategy")
    with open(run / "history.csv") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert losses[-1] < losses[0], out[-2000:]
    _, probs = _load_and_predict(str(run / "best.keras"))
    assert probs.shape == (3, 10)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_multi_worker_two_local_processes(tmp_path):
    run = tmp_path / "multi"
    ports = [_free_port(), _free_port()]
    cmd = _train_cmd(
        run, "--epochs=2", "--steps_per_epoch=10", "--strategy=multi_worker", "--lr_schedule=cosine"
    )
    procs = []
    try:
        for index in range(2):
            tf_config = {
                "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                "task": {"type": "worker", "index": index},
            }
            env = dict(ENV, TF_CONFIG=json.dumps(tf_config))
            procs.append(
                subprocess.Popen(
                    cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
            )
        outs = [p.communicate(timeout=360)[0] for p in procs]
    finally:
        for p in procs:  # Never leave a worker waiting on a dead peer.
            if p.poll() is None:
                p.kill()
                p.communicate()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
        assert _epochs_run(out) == [1, 2]
    derived = _json(run / "config.json")["derived"]
    assert derived["num_replicas"] == 2 and derived["strategy"].startswith(
        "MultiWorkerMirroredStrategy"
    )
    assert _json(run / "results.json")["metrics"]["num_examples"] == 270  # Chief evaluated.
    assert "no evaluation on this worker" in outs[1]
    assert (run / "backup_worker1" / "training_metadata.json").exists()


def test_script_errors_are_one_line(tmp_path):
    for flag, text in (
        ("--strategy=tpu", "`strategy` must be one of"),
        (f"--dataset={tmp_path / 'nope'}", "Dataset directory not found"),
    ):
        proc = subprocess.run(
            _train_cmd(tmp_path / "x", flag), env=ENV, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert text in proc.stderr.strip().splitlines()[-1]
