"""Bad input gets one clear error that names the argument and the value (CLIs: one line, exit 2)."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import keras_effnet
from keras_effnet import data
from keras_effnet.training import config as config_lib
from keras_effnet.training import evaluate, plan
from keras_effnet.training.config import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def _cli(script, *args):
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", script), *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    model = keras_effnet.build_efficientnet(
        0.25, 0.25, 224, input_shape=(32, 32, 3), classes=10, weights=None, name="tiny"
    )
    good = root / "good.keras"
    model.save(good)
    blob = good.read_bytes()
    truncated = root / "half.keras"
    truncated.write_bytes(blob[: len(blob) // 2])
    text = root / "notes.tflite"
    text.write_text("this is not a flatbuffer\n")
    return {"good": good, "truncated": truncated, "text": text}


@pytest.mark.slow  # The probe (tests/commands/test_probe.py) runs these cases for every command.
def test_cli_truncated_keras_and_text_tflite_are_named(broken_files):
    line = _cli("evaluate.py", f"--model_path={broken_files['truncated']}", "--dataset=digits")
    assert "not a readable .keras archive" in line and "half.keras" in line
    line = _cli("evaluate.py", f"--model_path={broken_files['text']}", "--dataset=digits")
    assert "not a valid .tflite file" in line and "notes.tflite" in line
    line = _cli(
        "export_tflite.py",
        f"--model={broken_files['truncated']}",
        "--mode=fp32",
        f"--output={broken_files['truncated']}.tflite",
        "--dataset=digits",
    )
    assert "not a readable .keras archive" in line


def test_cli_model_dir_that_is_a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("x")
    line = _cli("train.py", f"--model_dir={path}", "--epochs=1")
    assert "`model_dir` exists and is not a directory" in line and str(path) in line
    assert path.read_text() == "x"  # Nothing lost.


def test_loading_a_truncated_keras_file_in_the_library(broken_files):
    with pytest.raises(ValueError, match="not a readable .keras archive"):
        evaluate(str(broken_files["truncated"]), "digits", "test")
    with pytest.raises(ValueError, match="not found"):
        evaluate(str(broken_files["good"]) + ".missing.keras", "digits", "test")


def test_split_folders_without_train(tmp_path):
    (tmp_path / "test" / "cat").mkdir(parents=True)
    (tmp_path / "test" / "cat" / "a.png").write_bytes(b"x")
    with pytest.raises(
        ConfigError, match=r"split folders \(test\) but no train/ folder.*calibration"
    ):
        data.dataset_info(str(tmp_path))


def test_one_class_dataset_is_refused():
    info = data.DatasetInfo(
        "one", "folder", 1, ("cat",), {"train": 100, "validation": 10, "test": 10}
    )
    config = config_lib.config_from_flags({"model_dir": "r", "dataset": "one"})
    with pytest.raises(ConfigError, match=r"at least 2 classes.*has 1 \(cat\)"):
        plan.resolve(config, info, 1)


def test_single_softmax_class_and_ignored_pooling():
    with pytest.raises(ValueError, match="softmax over one class.*classes=1"):
        keras_effnet.EfficientNetB0(weights=None, classes=1, input_shape=(32, 32, 3))
    model = keras_effnet.EfficientNetB0(
        weights=None, classes=1, classifier_activation="sigmoid", input_shape=(32, 32, 3)
    )
    assert model.output.shape == (None, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keras_effnet.EfficientNetB0(weights=None, pooling="max", input_shape=(32, 32, 3))
    assert any("only used with include_top=False" in str(w.message) for w in caught)
    assert np.isfinite(model.count_params())


@pytest.mark.parametrize("name", ["b0", "b3", "b7", "lite0", "lite4"])
def test_plan_parameters_equal_the_built_model(name):
    from keras_effnet.core import builder, variants

    v = variants.get_variant(name)
    model = keras_effnet.get_model(name, weights=None)
    width = 1.0 if v.lite else v.width
    blocks = builder.scale_blocks(variants.B0_STAGES, v.width, v.depth, lite=v.lite)
    if v.lite:
        import dataclasses

        blocks[0] = dataclasses.replace(blocks[0], filters_in=32)
    stem = 32 if v.lite else keras_effnet.core.scaling.round_filters(32, width)
    head = 1280 if v.lite else keras_effnet.core.scaling.round_filters(1280, width)
    assert builder.plan_parameters(blocks, stem, head) == model.count_params()


def test_a_model_too_large_to_build_is_refused_before_building():
    # phi=60 once ran for 15 minutes and took all 23 GB before it was killed.
    with pytest.raises(
        ValueError,
        match=r"would have [\d,]+ parameters .* more than twice "
        r"EfficientNet-B7.*allow_large=True.*width=",
    ):
        keras_effnet.EfficientNet(phi=60, weights=None)
    with pytest.raises(ValueError, match="allow_large"):
        keras_effnet.build_efficientnet(4.0, 2.0, 224, weights=None)
    assert (
        keras_effnet.EfficientNet(phi=0.5, weights=None, input_shape=(64, 64, 3)).count_params() > 0
    )


def test_cli_wrong_label_count_is_one_line(broken_files, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    out = tmp_path / "m.tflite"
    line = _cli(
        "export_tflite.py",
        f"--model={broken_files['good']}",
        "--mode=fp32",
        f"--output={out}",
        "--dataset=digits",
        f"--labels={labels}",
    )
    assert "3 labels" in line and "10 classes" in line
    assert not out.exists()


def test_cli_bad_max_accuracy_drop(broken_files, tmp_path):
    line = _cli(
        "export_tflite.py",
        f"--model={broken_files['good']}",
        "--mode=int8",
        f"--output={tmp_path / 'm.tflite'}",
        "--dataset=digits",
        "--max_accuracy_drop=lots",
    )
    assert "`max_accuracy_drop` must be" in line and "'lots'" in line


@pytest.mark.slow  # Kept out of the default run's 10-minute budget (README, Set-up).
def test_loading_without_importing_keras_effnet_names_the_package(broken_files):
    # Keras imports a custom class's module only for its own packages (keras,
    # keras_hub, keras_cv, keras_nlp), so a .keras file of ours cannot load
    # before `import keras_effnet` registers the layers. The README says so; the
    # error must at least name our package, and the import must be enough.
    load = (
        "import sys, keras\n"
        "if sys.argv[2] == 'import':\n"
        "    import keras_effnet\n"
        "model = keras.saving.load_model(sys.argv[1], compile=False)\n"
        "print('loaded', model.count_params())\n"
    )
    bare = subprocess.run(
        [sys.executable, "-c", load, str(broken_files["good"]), "bare"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bare.returncode != 0
    assert "Could not locate class 'MBConv'" in bare.stderr
    assert (
        "keras_effnet>MBConv" in bare.stderr
        and "'module': 'keras_effnet.core.layers" in bare.stderr
    )
    imported = subprocess.run(
        [sys.executable, "-c", load, str(broken_files["good"]), "import"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert "loaded" in imported.stdout
    with open(os.path.join(REPO, "README.md")) as f:
        assert "Could not locate class 'MBConv'" in f.read()


def _rewritten(src, dst, old, new):
    """A copy of the .keras `src` whose config.json has every `old` replaced by `new`."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            blob = zin.read(name)
            if name == "config.json":
                assert old.encode() in blob
                blob = blob.replace(old.encode(), new.encode())
            zout.writestr(name, blob)
    return str(dst)


@pytest.mark.parametrize(
    "old, new, words",
    [
        ("MBConv", "NoSuchBlock", "NoSuchBlock"),
        ("keras_effnet>MBConv", "os>system", "cannot rebuild"),
        ('"kernel_size": 3', '"kernel_size": "three"', "cannot rebuild"),
        ('"filters_in": 8', '"filters_in": -8', "cannot rebuild"),
    ],
)
def test_untrusted_or_broken_keras_files_are_one_line(broken_files, tmp_path, old, new, words):
    path = _rewritten(broken_files["good"], tmp_path / "bad.keras", old, new)
    with pytest.raises(ConfigError) as raised:
        evaluate(path, "digits", "test")
    message = str(raised.value)
    assert "bad.keras" in message and words in message and "\n" not in message


def test_evaluate_names_a_wrong_image_size_and_bad_counts(broken_files):
    good = str(broken_files["good"])
    with pytest.raises(ConfigError, match=r"`image_size` 64 does not fit .* takes 32 px"):
        evaluate(good, "digits", "test", image_size=64)
    for name, value in [
        ("num_threads", -5),
        ("num_threads", 0),
        ("max_examples", -1),
        ("max_examples", 0),
        ("batch_size", 0),
        ("image_size", -64),
    ]:
        with pytest.raises(ConfigError, match=f"`{name}` must be a positive int or None"):
            evaluate(good, "digits", "test", **{name: value})


@pytest.mark.slow
def test_evaluate_names_a_wrong_image_size_of_a_tflite_file(broken_files, tmp_path):
    from keras_effnet import export

    tflite = tmp_path / "m.tflite"
    tflite.write_bytes(export.convert(str(broken_files["good"]), "fp32"))  # ~10 s
    with pytest.raises(ConfigError, match=r"`image_size` 64 does not fit .* takes 32 px"):
        evaluate(str(tflite), "digits", "test", image_size=64)


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_calibration", 0),
        ("num_calibration", -3),
        ("test_limit", 0),
        ("threads", -5),
        ("threads", 0),
        ("latency_runs", -1),
        ("qat_epochs", 0),
        ("batch_size", 0),
        ("prune_epochs", 0),
        ("seed", -1),
        ("min_guard_images", -1),
        ("learning_rate", 0.0),
        ("learning_rate", -1e-3),
        ("num_calibration", 1.5),
        ("threads", True),
        ("test_limit", -1),
        ("batch_size", -2),
        ("qat_epochs", -1),
        ("latency_runs", 1.5),
        ("seed", "0"),
    ],
)
def test_export_options_refuse_bad_counts_by_name(field, value):
    from keras_effnet import export

    with pytest.raises(ValueError, match=f"`{field}` must be"):
        export.ExportOptions(**{field: value})


def test_int8_guard_refuses_a_verdict_on_few_images():
    from keras_effnet.export import guard

    with pytest.raises(ValueError, match=r"on 3 'validation' images, fewer than 100.*33.3 points"):
        guard.check_search_size(3, "validation", 100)
    guard.check_search_size(3, "validation", 3)  # Accepted explicitly: --min_guard_images=3.


def test_export_refuses_to_replace_a_run_directory_or_a_file_of_the_other_kind(
    broken_files, tmp_path
):
    from keras_effnet import export

    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text("{}")
    keras_file = tmp_path / "model.keras"
    keras_file.write_bytes(b"old")
    for mode, output in [("savedmodel", run), ("savedmodel", keras_file), ("fp32", run)]:
        with pytest.raises(ConfigError, match="--overwrite"):
            export.export(str(broken_files["good"]), mode, str(output))
    assert (run / "results.json").read_text() == "{}" and keras_file.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["model.keras", "run"]


def test_seed_must_not_be_negative():
    with pytest.raises(ConfigError, match="`seed` must be an int >= 0"):
        config_lib.config_from_flags({"seed": -1})
