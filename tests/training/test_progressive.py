"""Progressive learning (EfficientNetV2, Algorithm 1): the stage schedule and its resolution."""

import keras
import numpy as np
import pytest

from keras_effnet import data
from keras_effnet.errors import ConfigError
from keras_effnet.training import config as config_lib
from keras_effnet.training import loop, modeling, plan, progressive, sections


def test_schedule_interpolates_size_and_regularization_to_the_targets():
    stages = progressive.schedule(
        224, 12, 4, 112, dropout_rate=0.2, randaugment_magnitude=0.6, mixup_alpha=0.3
    )
    # S_i = 112 + 112 i / 3, rounded to a multiple of 8; the last stage is the target.
    assert [s.image_size for s in stages] == [112, 152, 184, 224]
    assert [(s.first_epoch, s.end_epoch) for s in stages] == [(0, 3), (3, 6), (6, 9), (9, 12)]
    # Phi_0 (paper, Table 6): dropout 0.1, RandAugment a third of the target, MixUp 0.
    np.testing.assert_allclose(
        [s.dropout_rate for s in stages], [0.1, 0.13333, 0.16667, 0.2], atol=1e-5
    )
    np.testing.assert_allclose(
        [s.randaugment_magnitude for s in stages], [0.2, 0.33333, 0.46667, 0.6], atol=1e-5
    )
    np.testing.assert_allclose([s.mixup_alpha for s in stages], [0.0, 0.1, 0.2, 0.3], atol=1e-6)
    assert [s.index for s in stages] == [0, 1, 2, 3]


def test_uneven_epochs_and_targets_below_the_starting_values():
    stages = progressive.schedule(
        64, 10, 4, 32, dropout_rate=0.05, randaugment_magnitude=0.5, mixup_alpha=0.2
    )
    assert [s.end_epoch - s.first_epoch for s in stages] == [2, 3, 2, 3]  # Every epoch once.
    assert [s.image_size for s in stages] == [32, 40, 56, 64]
    assert {s.dropout_rate for s in stages} == {0.05}  # Never above the target.
    assert progressive.stage_of_epoch(stages, 0).index == 0
    assert (
        progressive.stage_of_epoch(stages, 4).index == 1
        and progressive.stage_of_epoch(stages, 9).index == 3
    )
    assert (
        progressive.stage_of_epoch(stages, 10).index == 3
    )  # A finished run stays in the last stage.
    single = progressive.schedule(64, 10, 1, 64, 0.2, 0.5, 0.2)
    assert len(single) == 1 and (
        single[0].image_size,
        single[0].dropout_rate,
        single[0].end_epoch,
    ) == (64, 0.2, 10)
    assert progressive.describe(single) == "off"


def test_auto_start_size_and_when_auto_is_off():
    assert [progressive.auto_start_size(s) for s in (224, 300, 64, 100, 40)] == [
        112,
        144,
        32,
        48,
        32,
    ]
    assert progressive.auto_mode(224, 20, total_steps=5000)[0] == "on"
    mode, why = progressive.auto_mode(32, 20, total_steps=5000)
    assert mode == "off" and "too small" in why
    mode, why = progressive.auto_mode(224, 7, total_steps=5000)  # Under 2 epochs per stage.
    assert mode == "off" and "7 epochs" in why
    assert progressive.auto_mode(224, 8, total_steps=2000)[0] == "on"
    mode, why = progressive.auto_mode(224, 20, total_steps=1999)  # A short run.
    assert mode == "off" and "1999 steps" in why


def _resolve(**flags):
    config = config_lib.config_from_flags({"model_dir": "r", "model": "b0", **flags})
    run_plan = plan.resolve(config, data.dataset_info("digits"), 1)
    return run_plan.config, run_plan


def test_resolve_fills_auto_and_records_the_stages():
    config, run_plan = _resolve(image_size=128, epochs=16, batch_size=8)  # 16 x 157 steps.
    d = config.data
    assert (d.progressive, d.progressive_stages, d.progressive_start_size) == ("on", 4, 64)
    stages = run_plan.stages
    assert [s.image_size for s in stages] == [64, 88, 104, 128] and stages[-1].dropout_rate == 0.2
    assert run_plan.progressive_reason.startswith("auto:")
    assert "4 stages, 64 -> 88 -> 104 -> 128 px" in loop.describe(run_plan.replace(strategy="x"), 0)
    again = plan.resolve(config, data.dataset_info("digits"), 1).config  # Twice: no change.
    assert again == config
    off, run_plan = _resolve(image_size=128, epochs=12, progressive="off")
    assert (off.data.progressive, off.data.progressive_stages, off.data.progressive_start_size) == (
        "off",
        1,
        128,
    )
    assert len(run_plan.stages) == 1
    for flags in (
        {"epochs": 6, "batch_size": 8},
        {"epochs": 12},
    ):  # Under 2 epochs a stage; 228 steps.
        short, run_plan = _resolve(image_size=128, **flags)
        assert short.data.progressive == "off" and run_plan.progressive_reason.startswith("auto:")
    mine, run_plan = _resolve(
        image_size=128, epochs=6, progressive="on", progressive_stages=3, progressive_start_size=96
    )
    assert [s.image_size for s in run_plan.stages] == [96, 112, 128]


@pytest.mark.parametrize(
    "flags, match",
    [
        ({"progressive": "yes"}, r"`progressive` must be .*Received: progressive='yes'"),
        (
            {"progressive_stages": -1},
            r"`progressive_stages` must be .*Received: progressive_stages=-1",
        ),
        (
            {"progressive_start_size": 16},
            r"`progressive_start_size` must be .*Received: progressive_start_size=16",
        ),
        ({"progressive_start_size": 1.5}, r"Received: progressive_start_size=1.5"),
    ],
)
def test_bad_progressive_flags_are_one_clear_error(flags, match):
    with pytest.raises(ConfigError, match=match):
        config_lib.config_from_flags(flags)


@pytest.mark.parametrize(
    "flags, match",
    [
        ({"progressive": "on", "image_size": 32}, r"at least 64 px.*Received: progressive='on'"),
        (
            {"progressive": "on", "progressive_stages": 13},
            r"at most the number of epochs.*progressive_stages=13",
        ),
        (
            {"progressive": "on", "progressive_start_size": 128},
            r"`progressive_start_size` must be in \[32, image_size=128\).*progressive_start_size=128",
        ),
    ],
)
def test_schedules_that_cannot_exist_are_one_clear_error(flags, match):
    with pytest.raises(ConfigError, match=match):
        _resolve(**{"image_size": 128, "epochs": 12, **flags})


def test_one_set_of_weights_trains_at_every_size_and_dropout_is_a_variable():
    import tensorflow as tf

    tiny = sections.ModelConfig(name="b0", width=0.25, depth=0.25, dropout_rate=0.2)
    fixed = modeling.build_model(tiny, 10, 64)
    dynamic = progressive.with_stage_dropout(modeling.build_model(tiny, 10, None))
    # Same variables in the same order: the EMA copy into the inference model relies on it.
    assert [w.path for w in dynamic.weights] == [w.path for w in fixed.weights]
    fixed.set_weights(dynamic.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(
        dynamic.predict(x, verbose=0), fixed.predict(x, verbose=0), atol=1e-6
    )
    assert dynamic.predict(x[:, :40, :40], verbose=0).shape == (2, 10)
    # One traced step for every size and rate (the classifier starts at zero:
    # look at the dropout's output).
    features = keras.Model(dynamic.inputs, dynamic.get_layer("top_dropout").output)
    step = tf.function(
        lambda images: features(images, training=True),
        input_signature=[tf.TensorSpec([2, None, None, 3], tf.float32)],
    )
    assert progressive.set_dropout(dynamic, 0.0) == 1
    a, b = step(x).numpy(), step(x).numpy()
    assert progressive.set_dropout(dynamic, 0.9) == 1
    c = step(x).numpy()
    step(x[:, :32, :32])
    assert step.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(a, b, atol=1e-6)  # Rate 0: no units dropped.
    dropped = (c == 0) & (a != 0)
    assert 0.8 < dropped.sum() / (a != 0).sum() < 1.0  # Rate 0.9, without a re-trace.
    np.testing.assert_allclose(c[c != 0], a[c != 0] / 0.1, rtol=1e-4)  # Kept units scaled.
    assert progressive.set_dropout(fixed, 0.5) == 0  # Plain models have no StageDropout.


def test_stage_streams_share_one_element_spec():
    from keras_effnet.training import builders

    _, run_plan = _resolve(
        image_size=64, epochs=8, augment="crop,mixup", batch_size=8, progressive="on"
    )
    stages = run_plan.stages
    specs = {str(builders.make_train_stream(run_plan, s).element_spec) for s in stages}
    assert len(specs) == 1 and "None, None, 3" in specs.pop()
    first = next(iter(builders.make_train_stream(run_plan, stages[0])))
    last = next(iter(builders.make_train_stream(run_plan, stages[-1])))
    assert first[0].shape == (8, 32, 32, 3) and last[0].shape == (8, 64, 64, 3)
    assert set(np.unique(first[1].numpy())) <= {0.0, 1.0}  # No MixUp in the first stage (alpha 0).
    assert ((last[1].numpy() > 0.01) & (last[1].numpy() < 0.99)).any()
