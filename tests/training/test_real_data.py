"""Training on real images (not the bundled digits): datasets built from packaged files."""

import json
import os

import numpy as np
import pytest

from keras_effnet import data
from keras_effnet.training import ExperimentConfig, real_data, train


def test_photo_patches_are_real_colour_images_without_train_test_overlap(tmp_path):
    root = real_data.build("photos", str(tmp_path), train_per_class=8, test_per_class=4)
    info = data.dataset_info(root)
    assert info.num_classes == 10 and info.splits == {"train": 70, "validation": 10, "test": 40}
    assert info.sources["validation"].startswith("10% of train/")
    images, _ = next(iter(data.load_dataset(root, "test", 32, 40)))
    images = images.numpy()
    # Colour photographs: the channels differ (not gray copied to RGB).
    assert np.abs(images[..., 0] - images[..., 2]).mean() > 5
    assert real_data.build("photos", str(tmp_path), 8, 4) == root  # Reused, not rebuilt.
    with pytest.raises(ValueError, match="train_per_class"):
        real_data.build("photos", str(tmp_path), 0, 4)
    with pytest.raises(ValueError, match="dataset='nope'"):
        real_data.build("nope", str(tmp_path), 8, 4)


@pytest.mark.skipif(
    not os.path.isdir(real_data.FASHION_DIR), reason="needs Debian's dataset-fashion-mnist"
)
def test_fashion_mnist_from_the_debian_package(tmp_path):
    root = real_data.build("fashion", str(tmp_path), train_per_class=5, test_per_class=3)
    info = data.dataset_info(root)
    assert info.num_classes == 10 and info.splits["test"] == 30 and "boot" in info.class_names


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_default_recipe_learns_colour_photo_patches(tmp_path):
    # Every flag at its default: the 32 px patches train at the auto 64 px with
    # the auto "shift" augmentation for the auto 24 epochs (docs/training.md,
    # "Small images"). A 12-epoch version scored 0.833 +- 0.015 over 3 seeds in
    # the benchmark, then 0.702 in one CI run (best validation epoch 8): too
    # close to the floor, so the test runs the length users get.
    root = real_data.build("photos", str(tmp_path / "data"), train_per_class=150, test_per_class=50)
    config = ExperimentConfig().replace(
        model={"name": "lite0"},
        data={"dataset": root},
        run={"model_dir": str(tmp_path / "run"), "strategy": "cpu", "verbose": 2},
    )
    result = train(config)
    with open(result.config_path) as f:
        resolved = json.load(f)["config"]
    assert (resolved["data"]["image_size"], resolved["data"]["augment"]) == (64, "shift")
    assert resolved["run"]["epochs"] == 24
    # Chance is 0.10. On the benchmark's split (100 test patches per class) the
    # default scored 0.860 +- 0.021 over 3 seeds (docs/training.md, "Training on
    # real data"), but this split (50 per class) is harder: 0.738 in CI at these
    # 24 epochs (0.702 at 12). The floor sits below that one measurement.
    assert result.metrics["split"] == "test" and result.metrics["top1"] >= 0.65, result.summary()
    assert result.best_val_accuracy >= 0.78
