"""The benchmark library: timing loop, steps, model and pipeline benchmarks, train_briefly.

Figures live in docs/*.md; these tests check that the measurements measure
what they claim (real steps, every step in every round, the real recipe).
"""

import json
import types

import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet import data, io
from keras_effnet.bench import baselines, input_pipeline, model, timing, training
from keras_effnet.training import config as config_lib
from keras_effnet.training import plan


class _Counter:
    """A step that counts its calls (and records the interleaving order)."""

    batch_size = 4

    def __init__(self, name, log):
        self.name, self.log = name, log

    def __call__(self):
        self.log.append(self.name)


def test_interleaved_throughput_runs_each_step():
    log = []
    result = timing.interleaved_throughput(
        {"a": _Counter("a", log), "b": _Counter("b", log)}, iterations=2, repeats=3, warmup=1
    )
    assert log.count("a") == log.count("b") == 7
    # Interleaved: after warmup, rounds alternate a, a, b, b, a, a, ...
    assert log[2:] == ["a", "a", "b", "b"] * 3
    assert set(result) == {"a", "b"} and len(result["a"]["rounds"]) == 3
    assert result["a"]["images_per_s"] > 0


def test_interleaved_rounds_settle_calls_are_untimed():
    log = []
    rounds = timing.interleaved_rounds(
        {"a": _Counter("a", log)}, iterations=3, repeats=2, warmup=0, settle=1
    )
    assert len(log) == 2 * (1 + 3)
    assert [len(calls) for calls in rounds["a"]] == [3, 3]


@pytest.mark.slow  # Kept out of the default run's 10-minute budget (README, Set-up).
def test_train_step_updates_weights():
    net = keras_effnet.EfficientNetLite0(classes=3, input_shape=(32, 32, 3))
    step = timing.TrainStep(net, batch_size=4)
    before = keras.ops.convert_to_numpy(net.get_layer("predictions").kernel).copy()
    step()
    after = keras.ops.convert_to_numpy(net.get_layer("predictions").kernel)
    assert (before != after).any()


def test_interleaved_latency_times_every_litert_model():
    from keras_effnet import export  # Local: only this test converts.

    net = keras_effnet.EfficientNetLite0(weights=None, classes=3, input_shape=(32, 32, 3))
    tflite = export.convert(net, "fp32")
    result = timing.interleaved_latency({"x": tflite, "y": tflite}, runs=4, rounds=2, warmup=1)
    assert set(result) == {"x", "y"}
    for figures in result.values():
        assert figures["runs"] == 4 and figures["rounds"] == 2
        assert 0 < figures["min_round_ms"] <= figures["median_ms"]


def test_compare_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode='eval'"):
        model.compare_b0_with_keras_applications(32, 2, "eval")


def test_compare_small():
    row = model.compare_b0_with_keras_applications(32, 2, "inference", iterations=1, repeats=1)
    # The same architecture timed in the same rounds: both rates measured, and
    # within a factor of 3 of each other (a wrong batch size, model or a
    # non-interleaved measurement under load would show here).
    assert row["keras_effnet_images_per_s"] > 0 and row["keras_applications_images_per_s"] > 0
    assert 1 / 3 < row["ratio"] < 3


def test_input_pipeline_benchmark_reports_both_rates():
    config = config_lib.config_from_flags(
        {
            "model": "b0",
            "width": 0.25,
            "depth": 0.25,
            "image_size": 32,
            "batch_size": 8,
            "augment": "crop,flip",
            "strategy": "cpu",
            "model_dir": "unused",
        }
    )
    result = input_pipeline.benchmark_input_pipeline(config, steps=4, skip=1, repeats=1)
    assert result["global_batch_size"] == 8 and result["augment"] == "crop,flip"
    assert result["bare_images_per_sec"] > 0 and result["end_to_end_images_per_sec"] > 0
    assert result["ratio"] == pytest.approx(
        result["end_to_end_images_per_sec"] / result["bare_images_per_sec"]
    )


@pytest.mark.slow
def test_train_briefly_trains_with_the_library_recipe(tmp_path):
    run_dir = str(tmp_path / "run")
    row = training.train_briefly("lite0", run_dir, image_size=32, epochs=3)
    # Digits has 10 classes: chance is 0.1; three epochs of the recipe get far above it.
    assert row["test_top1"] > 0.5 and row["val_accuracy"] > 0.5
    assert len(row["history"]) == 3
    # What train() resolved and wrote for this run is what the row reports,
    # and it is the library's default recipe for the same flags.
    with open(f"{run_dir}/config.json") as f:
        written = json.load(f)["config"]
    flags = {"model": "lite0", "image_size": 32, "epochs": 3, "seed": 0, "model_dir": run_dir}
    resolved = plan.resolve(
        config_lib.config_from_flags(flags), data.dataset_info("digits"), 1
    ).config
    assert row["recipe"] == written["optimizer"] == resolved.to_dict()["optimizer"]
    assert row["recipe"]["recipe"] == "scratch"
    trained = io.load_model(row["best_model_path"])
    images, labels = next(iter(data.load_dataset("digits", "test", 32, 270)))
    top1 = np.mean(trained.predict(images, verbose=0).argmax(-1) == labels.numpy())
    assert top1 == pytest.approx(row["test_top1"], abs=1e-6)


@pytest.mark.slow  # Kept out of the default run's 10-minute budget (README, Set-up).
def test_train_briefly_passes_flag_overrides(tmp_path):
    row = training.train_briefly(
        "lite0",
        str(tmp_path / "rms"),
        image_size=32,
        epochs=1,
        optimizer="rmsprop",
        bn_images=0,
        steps_per_epoch=2,
    )
    assert row["recipe"]["name"] == "rmsprop" and row["recipe"]["bn_images"] == 0


def _fake_training(monkeypatch, tmp_path):
    """bench.training without training: each run is a row from its arguments, counted."""
    calls = []

    def fake_train(model_name, model_dir, *, dataset, image_size, epochs, seed=0, **extra):
        calls.append((model_name, seed, extra.get("progressive") or extra.get("augment")))
        history = [
            {"val_accuracy": 0.5 + 0.1 * e, "elapsed_time_s": 10.0 * (e + 1)} for e in range(epochs)
        ]
        return {
            "train_accuracy": 0.9,
            "val_accuracy": history[-1]["val_accuracy"] + (0.05 if "shift" in model_dir else 0),
            "test_top1": 0.8 + 0.01 * seed,
            "wall_s": 30.0,
            "progressive": extra.get("progressive", "off"),
            "history": history,
            "best_model_path": f"{model_dir}/best.keras",
        }

    def fake_baseline(folder, image_size, epochs, seed):
        calls.append(("baseline", seed, image_size))
        return {"train_accuracy": 0.7, "val_accuracy": None, "test_top1": 0.6, "wall_s": 20.0}

    def fake_cnn(folder, image_size, epochs, seed):
        calls.append(("cnn", seed, image_size))
        return {"train_accuracy": 1.0, "val_accuracy": None, "test_top1": 0.9, "wall_s": 2.0}

    from keras_effnet.bench import progressive
    from keras_effnet.training import real_data

    monkeypatch.setattr(training, "train_briefly", fake_train)
    monkeypatch.setattr(progressive, "train_briefly", fake_train)
    monkeypatch.setattr(training, "baseline_run", fake_baseline)
    monkeypatch.setattr(training, "small_cnn_run", fake_cnn)
    monkeypatch.setattr(
        training.data, "dataset_info", lambda folder: types.SimpleNamespace(image_side=28)
    )
    monkeypatch.setattr(progressive, "plot_progressive", lambda rows, summary, path: None)
    monkeypatch.setattr(
        real_data, "build", lambda name, root, *args, **kwargs: str(tmp_path / "data" / name)
    )
    return calls


def test_bench_training_compare_resumes_and_writes_the_table(monkeypatch, tmp_path, capsys):
    calls = _fake_training(monkeypatch, tmp_path)
    options = training.BenchOptions(
        datasets=("photos",),
        models=("lite0",),
        seeds=2,
        epochs=2,
        output_dir=str(tmp_path),
        sweep=("augment=none", "augment=shift epochs=4"),
    )
    rows = training.run(options)
    assert [(r["method"], r["seed"]) for r in rows] == [
        ("lite0", 0),
        ("keras_b0_adam", 0),
        ("small_cnn", 0),
        ("lite0", 1),
        ("keras_b0_adam", 1),
        ("small_cnn", 1),
        ("sweep:augment=none", 0),
        ("sweep:augment=shift epochs=4", 0),
        ("sweep_best", 1),  # The best validation accuracy at seed 0, for the other seeds,
        ("sweep_best", 0),  # and its seed-0 run.
    ]
    # keras.applications B0 at our auto resolution (64 px for 28 px images), the CNN at 28 px.
    assert ("baseline", 0, 64) in calls and ("cnn", 0, 28) in calls
    assert ("lite0", 1, "shift") in calls and rows[8]["setting"] == "augment=shift epochs=4"
    assert rows[0]["dataset"] == "photos" and rows[0]["train_per_class"] == 150
    out = capsys.readouterr().out
    assert "photos   lite0             seed 0: test top-1 0.8000 train acc 0.9000 (30 s)" in out
    table = (tmp_path / "table.md").read_text()
    assert "| photos | lite0 | 2 | 80.5 ± 0.5 | 90.0 ± 0.0 | 60.0 ± 0.0 | 30 ± 0 |" in table
    assert "| photos | keras_b0_adam | 2 | 60.0 ± 0.0 | 70.0 ± 0.0 | - | 20 ± 0 |" in table
    assert "| photos | small_cnn | 2 | 90.0 ± 0.0 | 100.0 ± 0.0 | - | 2 ± 0 |" in table
    assert "| photos | sweep_best | 2 | 80.5 ± 0.5 |" in table
    assert len(json.loads((tmp_path / "results.json").read_text())["runs"]) == 10
    # A rerun trains nothing and reports the same table.
    calls.clear()
    assert len(training.run(options)) == 10 and calls == []
    assert (tmp_path / "table.md").read_text() == table
    with pytest.raises(ValueError, match="sweep='epochs'"):
        training.BenchOptions(sweep=("epochs",))


def test_bench_baselines_train_and_record_their_batchnorm_momentum(tmp_path):
    # 300 steps: a window of 30 steps (momentum 1 - 1/30); long runs keep Keras' 0.99.
    assert baselines.bn_momentum_for(300) == pytest.approx(0.9667, abs=1e-4)
    assert baselines.bn_momentum_for(10**6) == 0.99
    model = baselines.small_cnn(28, 10)
    # The 34,826 parameters of the Keras MNIST convnet, plus 2 x 9 x 32 for RGB input.
    assert model.output_shape == (None, 10) and model.count_params() == 34826 + 576
    row = baselines.small_cnn_run("digits", 28, 2, seed=0)
    assert row["test_top1"] > 0.5 and row["image_size"] == 28


def test_bench_training_transfer_and_progressive_modes(monkeypatch, tmp_path, capsys):
    calls = _fake_training(monkeypatch, tmp_path)
    monkeypatch.setattr(
        training.checkpoints, "save_timm_safetensors", lambda model, path: calls.append("save")
    )
    monkeypatch.setattr(training.io, "load_model", lambda path: None)
    with pytest.raises(ValueError, match="transfer"):
        training.BenchOptions(transfer=("fashion",))
    rows = training.run(
        training.BenchOptions(
            transfer=("fashion", "mnist5k"),
            models=("b0",),
            seeds=1,
            epochs=1,
            output_dir=str(tmp_path),
        )
    )
    assert [r["method"] for r in rows] == ["source", "scratch", "finetune", "finetune_all_layers"]
    assert [r["dataset"] for r in rows] == ["fashion"] + ["mnist5k"] * 3
    assert (tmp_path / "transfer.md").exists() and (tmp_path / "transfer.json").exists()

    calls.clear()
    options = training.BenchOptions(
        progressive=True, datasets=("photos",), models=("b0",), seeds=1, epochs=3,
        output_dir=str(tmp_path),
    )  # fmt: skip
    rows = training.run(options)
    assert [r["progressive"] for r in rows] == ["off", "on"]
    assert [c[2] for c in calls] == ["off", "on"]
    table = (tmp_path / "progressive.md").read_text()
    assert table.startswith("| dataset | model | seed | progressive | target val acc |")
    assert "| photos | b0 | 0 | off | 70 % | 30 | 30 | 70.0 | 80.0 |" in table
    assert "photos   b0     seed 0 progressive off: best val 0.7000" in capsys.readouterr().out
    calls.clear()
    assert len(training.run(options)) == 2 and calls == []


def test_the_baselines_train_as_many_epochs_as_the_default_resolves_to():
    # Digits: 1258 training images, 19 steps of 64; 500 steps take 27 epochs.
    assert baselines.BASELINE_BATCH == 64
    assert baselines.default_epochs("digits") == 27
