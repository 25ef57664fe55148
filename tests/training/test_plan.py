"""`plan.resolve` and `RunPlan`: a run resolved once, recorded as config.json's "derived"."""

import dataclasses
import json

import pytest

from keras_effnet import data
from keras_effnet.training import config as config_lib
from keras_effnet.training import plan, progressive

# config.json's "derived" keys, as runs written before `RunPlan` have them
# (`train` adds "strategy"); resumes and docs/training.md read this layout.
DERIVED_KEYS = {
    "num_replicas",
    "global_batch_size",
    "steps_per_epoch",
    "total_steps",
    "peak_learning_rate",
    "warmup_steps",
    "num_classes",
    "dataset_kind",
    "splits",
    "split_sources",
    "progressive",
    "versions",
    "source_image_side",
}


def _digits_plan(replicas=2, **flags):
    config = config_lib.config_from_flags({"model_dir": "r", **flags})
    return plan.resolve(config, data.dataset_info("digits"), replicas)


def test_resolve_matches_a_hand_computed_plan():
    # Digits: 1258 training images. Batch 64 on 2 replicas: a global batch of 128,
    # 1258 // 128 = 9 steps per epoch, 20 epochs = 180 steps. The scratch recipe's
    # 2e-3 per 64 images scales to 2e-3 * 128 / 64 = 4e-3; warmup is a tenth of a
    # 20-epoch run (2 epochs = 18 steps); 180 steps is too short for progressive.
    run_plan = _digits_plan(batch_size=64, epochs=20)
    assert isinstance(run_plan, plan.RunPlan)
    assert (run_plan.num_replicas, run_plan.global_batch_size) == (2, 128)
    assert (run_plan.steps_per_epoch, run_plan.total_steps) == (9, 180)
    assert run_plan.peak_learning_rate == pytest.approx(4e-3)
    assert run_plan.warmup_steps == 18
    assert (run_plan.num_classes, run_plan.dataset_kind) == (10, "digits")
    assert dict(run_plan.splits) == {"train": 1258, "validation": 269, "test": 270}
    assert run_plan.split_sources["test"].startswith("15% of scikit-learn digits")
    assert run_plan.progressive_reason == "auto: 180 steps is a short run (under 2000)"
    # The 8 px digits train at 64 px (small images are upsampled to it), stride-2 stem.
    assert run_plan.stages == (progressive.Stage(0, 0, 20, 64, 0.2, 0.5, 0.2),)
    assert (run_plan.source_image_side, run_plan.config.model.stem_strides) == (8, 2)
    assert run_plan.strategy is None
    config = run_plan.config  # Every auto filled in.
    assert (config.data.image_size, config.optimizer.recipe, config.optimizer.warmup_epochs) == (
        64,
        "scratch",
        2.0,
    )
    assert config.data.progressive == "off" and config.data.progressive_stages == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        run_plan.total_steps = 1
    with pytest.raises(TypeError):
        run_plan.splits["train"] = 1


def test_the_peak_learning_rate_scales_with_the_global_batch_per_recipe():
    one = _digits_plan(replicas=1, batch_size=32, epochs=20, recipe="paper")
    four = _digits_plan(replicas=4, batch_size=32, epochs=20, recipe="paper")
    assert one.peak_learning_rate == pytest.approx(0.016 * 32 / 256)
    assert four.peak_learning_rate == pytest.approx(0.016 * 128 / 256)
    assert (one.steps_per_epoch, four.steps_per_epoch) == (1258 // 32, 1258 // 128)


def test_to_dict_is_config_json_derived():
    run_plan = _digits_plan(batch_size=64, epochs=20)
    values = json.loads(json.dumps(run_plan.to_dict()))  # JSON types only.
    assert set(values) == DERIVED_KEYS
    assert values["progressive"] == {
        "reason": run_plan.progressive_reason,
        "stages": [s.to_dict() for s in run_plan.stages],
    }
    assert values["splits"] == {"train": 1258, "validation": 269, "test": 270}
    assert set(values["versions"]) == {"tensorflow", "keras"}
    assert (values["global_batch_size"], values["warmup_steps"]) == (128, 18)
    with_strategy = run_plan.replace(strategy="MirroredStrategy (2 replicas)").to_dict()
    assert set(with_strategy) == DERIVED_KEYS | {"strategy"}
    assert with_strategy["strategy"] == "MirroredStrategy (2 replicas)"


def test_replace_changes_config_sections_and_keeps_the_rest():
    run_plan = _digits_plan(batch_size=64, epochs=20)
    changed = run_plan.replace(run={"precision": "mixed_bfloat16"})
    assert changed.config.run.precision == "mixed_bfloat16"
    assert changed.config.optimizer == run_plan.config.optimizer
    assert changed.replace(run={"precision": "float32"}) == run_plan


@pytest.mark.parametrize(
    "side, weights, flags, expected",
    [
        (8, None, {}, (64, 2)),  # digits: small images are upsampled to 64 px
        (28, None, {}, (64, 2)),  # MNIST-like
        (100, None, {}, (104, 2)),  # between 64 px and native: its own side, paper stride
        (500, None, {}, (224, 2)),  # large photos: the native resolution
        (None, None, {}, (224, 2)),  # unknown (TFDS of varying sizes): native
        (28, "imagenet", {}, (224, 2)),  # weights: their resolution
        (28, None, {"image_size": 56}, (56, 1)),  # the user's size: under 64 px, stride 1
        (28, None, {"image_size": 64}, (64, 2)),  # 64 px: already a 2x2 last feature map
        (28, None, {"image_size": 96, "stem_strides": 1}, (96, 1)),  # the user's stride
    ],
)
def test_the_auto_resolution_and_stem_stride_follow_the_source_images(
    side, weights, flags, expected
):
    info = dataclasses.replace(data.dataset_info("digits"), image_side=side)
    config = config_lib.config_from_flags(
        {"model_dir": "r", "model": "b0", "weights": weights, **flags}
    )
    resolved = plan.resolve(config, info, 1).config
    assert (resolved.data.image_size, resolved.model.stem_strides) == expected


def test_runs_recorded_before_stem_strides_read_as_stride_2():
    values = config_lib.config_from_flags({"model_dir": "r"}).to_dict()
    del values["model"]["stem_strides"]
    assert config_lib.ExperimentConfig.from_dict(values).model.stem_strides == 2


@pytest.mark.parametrize(
    "kind, side, epochs, expected",
    [
        ("digits", 8, 20, "none"),  # the 8x8 digits fill their frame
        ("folder", 28, 2, "shift"),  # small images, however short the run
        ("folder", 200, 2, "none"),  # a short run of larger images
        ("folder", 200, 200, "crop,flip"),  # a long one
    ],
)
def test_auto_augmentation_follows_the_images_and_the_run(kind, side, epochs, expected):
    info = dataclasses.replace(data.dataset_info("digits"), kind=kind, image_side=side)
    config = config_lib.config_from_flags({"model_dir": "r", "epochs": epochs})
    assert plan.resolve(config, info, 1).config.data.augment == expected


@pytest.mark.parametrize(
    "train_examples, flags, expected",
    [
        (1350, {}, 24),  # 21 steps of 64: 500 steps take 24 epochs
        (1258, {"batch_size": 32}, 13),  # 39 steps of 32
        (3200, {}, 10),  # 50 steps: 10 epochs are 500 steps already
        (1_281_167, {}, 10),  # ImageNet-sized: never fewer than 10
        (64, {}, 100),  # one step per epoch: capped at 100 epochs
        (1350, {"steps_per_epoch": 5}, 100),  # steps_per_epoch counts, not the split
        (1350, {"epochs": 3}, 3),  # the user's epochs
    ],
)
def test_auto_epochs_give_small_datasets_500_steps(train_examples, flags, expected):
    info = data.dataset_info("digits")
    info = dataclasses.replace(info, splits={**info.splits, "train": train_examples})
    config = config_lib.config_from_flags({"model_dir": "r", **flags})
    run_plan = plan.resolve(config, info, 1)
    assert run_plan.config.run.epochs == expected  # Recorded in config.json as resolved.
    assert run_plan.total_steps == run_plan.steps_per_epoch * expected
    # The auto warmup follows the resolved length.
    assert run_plan.config.optimizer.warmup_epochs == pytest.approx(min(5.0, expected / 10))
