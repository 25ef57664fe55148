"""Training library: config validation, TF_CONFIG, recipe pieces, model setup, evaluation."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_effnet.training import config as config_lib
from keras_effnet.training import evaluation as evaluate_lib
from keras_effnet.training import modeling, recipe, sections, strategy
from keras_effnet.training.config import ConfigError, ExperimentConfig

TINY = sections.ModelConfig(name="b0", width=0.25, depth=0.25)


@pytest.mark.parametrize(
    "flags, match",
    [
        ({"model": "b9"}, "model"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"image_size": 16}, "image_size"),
        ({"strategy": "tpu"}, "strategy"),
        ({"precision": "float16"}, "precision"),
        ({"augment": "crop,rotate"}, "augment"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"ema_momentum": 1.0}, "ema_momentum"),
        ({"label_smoothing": 1.5}, "label_smoothing"),
        ({"base_lr": 0.0}, "base_lr"),
        ({"verbose": 3}, "verbose"),
        ({"recipe": "fast"}, "recipe"),
        ({"bn_images": -2}, "bn_images"),
        ({"optimizer": "adam"}, "optimizer"),
        ({"no_such_flag": 1}, "flag"),
    ],
)
def test_bad_flags_raise_one_error_naming_the_flag(flags, match):
    with pytest.raises(ConfigError, match=match) as e:
        config_lib.config_from_flags(flags)
    assert "Received" in str(e.value)


def test_config_round_trips_and_reports_differences():
    cfg = config_lib.config_from_flags(
        {"model": "b1", "image_size": 64, "weights": "", "epochs": 10, "model_dir": "r"}
    )
    assert cfg.model.name == "b1" and cfg.model.weights is None and cfg.data.image_size == 64
    back = ExperimentConfig.from_dict(json.loads(cfg.to_json()))
    assert back == cfg
    other = cfg.replace(run={"epochs": 3, "strategy": "mirrored"}, data={"data_dir": "/x"})
    # Runtime-only fields (strategy, data_dir) are not differences.
    assert config_lib.config_differences(cfg, other) == ["run.epochs: 10 -> 3"]


@pytest.mark.parametrize(
    "raw, match",
    [
        ("", "needs the TF_CONFIG"),
        ("{not json", "not valid JSON"),
        ('{"task": {"type": "worker", "index": 0}}', '"cluster"'),
        (
            '{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
            "host:port",
        ),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
            "out of range",
        ),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "not a job"),
        (
            '{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
            "ps",
        ),
    ],
)
def test_malformed_tf_config_is_a_clear_error(raw, match):
    with pytest.raises(ConfigError, match=match):
        strategy.parse_tf_config(raw)


def test_valid_tf_config_and_multi_worker_strategy_checks_env(monkeypatch):
    raw = '{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}'
    assert strategy.parse_tf_config(raw)["task"]["index"] == 1
    monkeypatch.setenv("TF_CONFIG", "[1, 2]")
    with pytest.raises(ConfigError, match="Malformed TF_CONFIG"):
        strategy.make_strategy("multi_worker")


def test_strategies_on_this_machine():
    s = strategy.make_strategy("auto")  # No GPUs here: one device.
    assert isinstance(s, tf.distribute.OneDeviceStrategy) and s.num_replicas_in_sync == 1
    assert strategy.task_info(s) == (None, 0, True)
    assert isinstance(strategy.make_strategy("cpu"), tf.distribute.OneDeviceStrategy)
    cpus = len(tf.config.list_logical_devices("CPU"))
    assert strategy.make_strategy("mirrored").num_replicas_in_sync == cpus


def test_learning_rate_schedules():
    s = recipe.WarmupSchedule(0.1, warmup_steps=10, total_steps=100, steps_per_epoch=10)
    lr = [float(s(i)) for i in range(100)]
    np.testing.assert_allclose(lr[:10], 0.1 * np.arange(1, 11) / 10, rtol=1e-6)
    # Staircase decay 0.97 every 2.4 epochs (24 steps), counted from step 0.
    np.testing.assert_allclose(
        [lr[23], lr[24], lr[48], lr[99]], [0.1, 0.097, 0.1 * 0.97**2, 0.1 * 0.97**4], rtol=1e-5
    )
    cos = recipe.WarmupSchedule(0.1, 0, 100, 10, kind="cosine")
    np.testing.assert_allclose(
        [float(cos(0)), float(cos(50)), float(cos(100))], [0.1, 0.05, 0.0], atol=1e-6
    )
    again = recipe.WarmupSchedule.from_config(s.get_config())
    assert float(again(30)) == pytest.approx(lr[30])
    assert recipe.peak_learning_rate(0.016, 512) == pytest.approx(0.032)
    assert recipe.auto_warmup_epochs(350) == 5 and recipe.auto_warmup_epochs(10) == 1


def test_auto_ema_momentum_scales_with_run_length():
    assert recipe.auto_ema_momentum(1_000_000) == 0.9999  # Full-scale runs: the recipe value.
    assert recipe.auto_ema_momentum(400) == pytest.approx(0.975)  # Window ~ 40 steps.
    assert recipe.auto_ema_momentum(8) == 0.0  # Too short to average.


def _tiny_model(classes=10, size=32):
    return modeling.build_model(TINY, classes, size)


def test_tf1_rmsprop_starts_mean_squares_at_one():
    var = keras.Variable(np.ones((3,), np.float32))
    opt = recipe.TF1RMSprop(learning_rate=0.1, rho=0.9, momentum=0.0, epsilon=1e-3)
    opt.build([var])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(opt._velocities[0]), 1.0)
    opt.apply_gradients([(tf.constant([1.0, 1.0, 1.0]), var)])
    # v = 0.9 * 1 + 0.1 * 1 = 1; step = 0.1 * 1 / sqrt(1 + 1e-3).
    np.testing.assert_allclose(keras.ops.convert_to_numpy(var), 1 - 0.1 / np.sqrt(1.001), rtol=1e-6)


def test_weight_decay_only_on_kernels():
    model = _tiny_model()
    count = recipe.apply_weight_decay(model, 1e-3)
    kernels = [v for v in model.trainable_weights if v.path.endswith("/kernel")]
    assert count == len(kernels) > 10
    assert all(
        v.regularizer is None for v in model.trainable_weights if not v.path.endswith("/kernel")
    )
    expected = 0.5 * 1e-3 * sum(float(np.sum(np.square(v.numpy()))) for v in kernels)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)


def test_batch_norm_switches_reach_nested_layers():
    model = _tiny_model()
    layers = modeling.batch_norm_layers(model)
    top_level = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(layers) > len(top_level)  # MBConv blocks hold their own BN layers.
    assert modeling.set_batch_norm(model, synchronized=True, frozen=True) == len(layers)
    assert all(l.synchronized and not l.trainable for l in layers)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    before = [l.moving_mean.numpy().copy() for l in layers]
    model(x, training=True)  # Frozen BN runs in inference mode: statistics stay.
    assert all(np.array_equal(b, l.moving_mean.numpy()) for b, l in zip(before, layers))


def test_fine_tune_weights_transfer_by_name_skipping_the_classifier(tmp_path):
    source = _tiny_model(classes=10)
    path = str(tmp_path / "source.keras")
    source.save(path)
    target = _tiny_model(classes=5)
    copied, skipped = modeling.load_initial_weights(target, path, TINY, 32)
    assert skipped == ["predictions"] and copied > 10
    np.testing.assert_array_equal(
        target.get_layer("top_conv").get_weights()[0], source.get_layer("top_conv").get_weights()[0]
    )
    with pytest.raises(ConfigError, match="not found"):
        modeling.load_initial_weights(target, str(tmp_path / "missing.keras"), TINY, 32)


def test_ema_weights_come_from_the_optimizer():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5), "mse")
    model.optimizer.build(model.trainable_variables)
    for _ in range(3):  # Not fit(): it overwrites the weights with the EMA at the end.
        model.optimizer.apply_gradients([(tf.ones_like(v), v) for v in model.trainable_variables])
    ema = recipe.ema_weights(model)
    avg = model.optimizer._model_variables_moving_average
    np.testing.assert_allclose(ema[0], avg[0].numpy())
    assert not np.allclose(ema[0], model.weights[0].numpy())


def _small_classifier():
    """A quick conv net with the package's input contract (0..255 RGB, softmax)."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def test_evaluate_keras_and_quantized_tflite(tmp_path):
    from keras_effnet import data

    model = _small_classifier()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(data.load_dataset("digits", "train", 32, 32), epochs=4, verbose=0)
    keras_path = str(tmp_path / "m.keras")
    model.save(keras_path)
    ref = evaluate_lib.evaluate(keras_path, "digits", "test")
    assert ref["num_examples"] == 270 and ref["format"] == "keras"
    assert ref["top1"] > 0.3 and ref["top5"] >= ref["top1"] and ref["loss"] > 0
    # Same numbers computed by hand.
    ds = data.load_dataset("digits", "test", 32, 270)
    x, y = next(iter(ds))
    probs = model.predict(x, verbose=0)
    assert ref["top1"] == pytest.approx(np.mean(np.argmax(probs, 1) == y.numpy()))
    assert ref["loss"] == pytest.approx(
        -np.mean(np.log(probs[np.arange(270), y.numpy()])), rel=1e-4
    )

    saved = str(tmp_path / "saved")
    model.export(saved, format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[i : i + 1]] for i in range(50))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    tflite_path = tmp_path / "m_int8.tflite"
    tflite_path.write_bytes(converter.convert())
    quant = evaluate_lib.evaluate(str(tflite_path), "digits", "test", batch_size=50)
    assert quant["format"] == "tflite" and quant["num_examples"] == 270
    # Quantization costs little accuracy: input/output scales were applied right.
    assert abs(quant["top1"] - ref["top1"]) < 0.05
    assert "m_int8.tflite" in evaluate_lib.format_table([ref, quant])
    with pytest.raises(ConfigError, match="classes"):
        evaluate_lib.evaluate(keras_path, _five_class_folder(tmp_path), "train")


def _five_class_folder(root):
    folder = root / "five"
    for c in range(5):
        (folder / f"c{c}").mkdir(parents=True)
        for i in range(3):
            image = np.full((8, 8, 3), 40 * c, np.uint8)
            (folder / f"c{c}" / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    return str(folder)


def _resolved(**flags):
    from keras_effnet import data
    from keras_effnet.training import plan

    config = config_lib.config_from_flags({"model_dir": "r", **flags})
    run_plan = plan.resolve(config, data.dataset_info("digits"), 1)
    return run_plan.config, run_plan


def test_recipes_resolve_every_auto_value_and_flags_override_them():
    config, run_plan = _resolved(epochs=20)
    o = config.optimizer
    assert (o.recipe, o.name, o.schedule, o.base_lr, o.lr_batch_size) == (
        "scratch",
        "adamw",
        "cosine",
        2e-3,
        64,
    )
    assert o.weight_decay == 0.05 and o.label_smoothing == 0.1 and o.bn_images == 512
    steps = run_plan.total_steps
    assert steps == 20 * (1258 // 64)
    assert o.ema_momentum == pytest.approx(1 - 1 / (0.05 * steps), abs=1e-6)
    assert config.model.drop_connect_rate == pytest.approx(0.2 * steps / 10_000, abs=1e-4)
    assert config.run.eval_split == "test" and config.data.crop_min_area == 0.5
    assert run_plan.split_sources["validation"].startswith("15% of scikit-learn digits")
    paper, run_plan = _resolved(epochs=20, recipe="paper")
    assert (paper.optimizer.name, paper.optimizer.base_lr, paper.optimizer.schedule) == (
        "rmsprop",
        0.016,
        "exponential",
    )
    assert run_plan.peak_learning_rate == pytest.approx(0.016 * 64 / 256)
    tuned, _ = _resolved(epochs=20, weights="x.keras", freeze_bn=True)
    assert tuned.optimizer.recipe == "finetune" and tuned.optimizer.weight_decay == 0.005
    assert tuned.optimizer.bn_images == 0  # Frozen BatchNorm keeps the source statistics.
    mine, _ = _resolved(
        epochs=20, base_lr=0.01, optimizer="sgd", drop_connect_rate=0.3, bn_images=0
    )
    assert (mine.optimizer.base_lr, mine.optimizer.name, mine.model.drop_connect_rate) == (
        0.01,
        "sgd",
        0.3,
    )
    assert mine.optimizer.recipe == "scratch" and mine.optimizer.bn_images == 0


def test_recalibrated_batch_norm_holds_the_average_batch_statistics():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    images = np.random.default_rng(0).normal(3.0, 2.0, (96, 4)).astype("float32")
    batches = images.reshape(3, 32, 4)
    assert modeling.recalibrate_batch_norm(model, list(batches)) == 3
    bn = model.layers[-1]
    np.testing.assert_allclose(bn.moving_mean.numpy(), batches.mean(1).mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), batches.var(1).mean(0), rtol=1e-4)
    assert bn.momentum == 0.99


def test_history_csv_lists_each_epoch_once():
    from keras_effnet.training import callbacks

    text = callbacks.history_csv(
        [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "val_accuracy": 0.9}]
    )
    assert text.splitlines() == ["epoch,loss,val_accuracy", "0,0.5,", "1,0.25,0.9"]


def test_fine_tuning_defaults_resolve_from_weights_and_flags_override_them():
    tuned, _ = _resolved(epochs=12, weights="x.safetensors")
    assert tuned.model.freeze_bn is True and tuned.model.head_epochs == 2
    assert tuned.optimizer.recipe == "finetune" and tuned.optimizer.bn_images == 0
    scratch, _ = _resolved(epochs=12)
    assert scratch.model.freeze_bn is False and scratch.model.head_epochs == 0
    mine, _ = _resolved(epochs=12, weights="x.safetensors", freeze_bn=False, head_epochs=0)
    assert mine.model.freeze_bn is False and mine.model.head_epochs == 0
    assert mine.optimizer.bn_images == 512
    assert recipe.auto_head_epochs(2, "w") == 1 and recipe.auto_head_epochs(100, "w") == 5
    assert recipe.auto_head_epochs(1, "w") == 0 and recipe.auto_head_epochs(12, None) == 0
    # A timm tag trains at its resolution unless told otherwise.
    v2, _ = _resolved(epochs=3, model="v2b0", weights="timm:tf_efficientnetv2_b0.in1k")
    assert v2.data.image_size == 192
    with pytest.raises(ConfigError, match="Unknown timm tag"):
        _resolved(epochs=3, model="v2b0", weights="timm:tf_efficientnetv2_b0.nope")


@pytest.mark.slow  # Kept out of the default run's 10-minute budget (README, Set-up).
def test_head_only_epochs_train_the_classifier_alone_from_a_timm_file(tmp_path):
    """Epoch 1 changes only the classifier (backbone frozen), epoch 2 the backbone too."""
    from keras_effnet.core import checkpoints
    from keras_effnet.training import loop

    source = _tiny_model(classes=10)
    weights = checkpoints.save_timm_safetensors(source, str(tmp_path / "source.safetensors"))
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            layers = {layer.name: layer for layer in self.model.layers}
            snapshots.append(
                {
                    name: keras.ops.convert_to_numpy(layers[name].weights[0]).copy()
                    for name in ("stem_conv", "predictions")
                }
            )

    config = config_lib.config_from_flags(
        {
            "model": "b0",
            "width": 0.25,
            "depth": 0.25,
            "image_size": 32,
            "epochs": 2,
            "steps_per_epoch": 3,
            "weights": weights,
            "head_epochs": 1,
            "model_dir": str(tmp_path / "run"),
            "verbose": 0,
        }
    )
    result = loop.train(config, extra_callbacks=[Snapshot()])
    stem = source.get_layer("stem_conv").kernel.numpy()
    np.testing.assert_array_equal(snapshots[0]["stem_conv"], stem)
    assert np.abs(snapshots[0]["predictions"]).max() > 0  # started at zero, trained
    assert not np.array_equal(snapshots[1]["stem_conv"], stem)
    with open(result.config_path) as f:
        resolved = json.load(f)["config"]["model"]
    assert resolved["freeze_bn"] is True and resolved["head_epochs"] == 1


def test_progress_bar_hides_bookkeeping_and_top5_needs_six_classes(capsys):
    from keras_effnet.training import callbacks

    bar = callbacks.ProgressBar()
    bar.set_params({"verbose": 2, "epochs": 1, "steps": 1})
    bar.on_train_begin()
    bar.on_epoch_begin(0)
    bar.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.75, "stage": 0, "image_size": 96})
    out = capsys.readouterr().out
    assert "accuracy: 0.7500" in out and "stage" not in out and "image_size" not in out
    names = lambda n: [m.name for m in recipe.make_loss_and_metrics(n, 0.0)[1]]  # noqa: E731
    assert names(4) == ["accuracy"] and names(6) == ["accuracy", "top5"]
