"""keras_effnet.runs: defaults from a model's own run, and the one class-count check."""

import json
import os

import keras
import pytest

from keras_effnet import export, runs
from keras_effnet.errors import ConfigError
from keras_effnet.training import evaluate

import helpers

SIZE = 32
CLASSES = 4


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory):
    """A tiny 4-class Lite (32 px, untrained) in a run directory trained on an image folder."""
    root = tmp_path_factory.mktemp("photos")
    names = helpers.write_image_folder(str(root / "data"), CLASSES)
    model = helpers.tiny_classifier(CLASSES, SIZE)
    path = helpers.write_run(str(root / "run"), model, str(root / "data"), names, SIZE)
    return path, str(root / "data"), names


def test_find_run_reads_config_and_labels(photo_run):
    path, data, names = photo_run
    run = runs.find_run(path)
    assert run.dataset == data and run.image_size == SIZE and run.labels == tuple(names)
    assert runs.find_run(os.path.join(os.path.dirname(data), "elsewhere.keras")) is None


def test_find_run_skips_a_foreign_config_and_rejects_a_broken_one(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "x"}))  # timm's, say
    assert runs.find_run(str(tmp_path / "model.keras")) is None
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json cannot be read"):
        runs.find_run(str(tmp_path / "model.keras"))


def test_resolve_data_rules(photo_run):
    path, data, _ = photo_run
    assert runs.resolve_data(path, CLASSES) == runs.DataChoice(data, None, "run")
    assert runs.resolve_data(path, CLASSES, "digits").source == "flag"
    lone = "/nowhere/model.keras"
    assert runs.resolve_data(lone, 10).dataset == "digits"
    with pytest.raises(ConfigError, match="--dataset is required.*4 classes"):
        runs.resolve_data(lone, CLASSES)


def test_check_classes_is_one_line():
    runs.check_classes(4, 4, "x")
    runs.check_classes(4, None, "x")
    with pytest.raises(ConfigError) as info:
        runs.check_classes(4, 10, "dataset 'digits'", "'m.keras'")
    assert "\n" not in str(info.value) and "'m.keras' outputs 4 classes" in str(info.value)


def test_evaluate_defaults_to_the_run_and_hides_top5(photo_run):
    path, data, _ = photo_run
    result = evaluate(path)
    assert result["dataset"] == data and result["dataset_source"] == "run"
    assert result["num_examples"] == 2 * CLASSES and "top5" not in result
    assert "top5" not in evaluate_table(result)
    with pytest.raises(ConfigError, match="outputs 4 classes but dataset 'digits' has 10"):
        evaluate(path, "digits")


def evaluate_table(result):
    from keras_effnet.training.evaluation import format_table

    return format_table(result)


def test_export_refuses_other_data_and_needs_a_dataset(photo_run, tmp_path):
    path, _, _ = photo_run
    out = tmp_path / "m.tflite"
    with pytest.raises(ValueError, match="outputs 4 classes but dataset 'digits' has 10"):
        export.export(path, "int8", str(out), export.ExportOptions(dataset="digits"))
    lone = tmp_path / "lone.keras"
    keras.saving.load_model(path).save(str(lone))
    with pytest.raises(ConfigError, match="--dataset is required"):
        export.export(str(lone), "fp32", str(out))
    with pytest.raises(ValueError, match="labels file .* has 3 labels"):
        (tmp_path / "l.txt").write_text("a\nb\nc\n")
        export.export(path, "fp32", str(out), export.ExportOptions(labels=str(tmp_path / "l.txt")))
    assert not out.exists()
