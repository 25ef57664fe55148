"""The scaling study accepts EfficientNetV2 (specs, plans, the script end to end)."""

import json
import os
import subprocess
import sys

import pytest

import keras_effnet
from keras_effnet import study
from keras_effnet.study import specs

import helpers

REPO = helpers.REPO


@pytest.mark.parametrize(
    "name,family,resolution",
    [
        ("v2b0", "efficientnetv2", 224),
        ("EfficientNetV2S", "efficientnetv2", 384),
        ("b0", "efficientnet", 224),
        ("lite0", "efficientnet-lite", 224),
    ],
)
def test_specs_of_named_models(name, family, resolution):
    spec = specs.parse_model_name(name)
    assert specs.family(spec) == family
    assert specs.native_resolution(spec) == resolution
    model = specs.build(spec, 32, classes=10)
    # The plan the study reads is the network the builder builds.
    assert specs.plan(spec).parameters(classes=10) == model.count_params()


def test_architecture_keys_tell_v1_and_v2_apart():
    keys = {
        n: specs.architecture_key(specs.parse_model_name(n), 64)
        for n in ("b0", "v2b0", "v2b1", "v2s")
    }
    assert len(set(keys.values())) == 4
    assert keys["v2b0"] == specs.architecture_key({"name": "v2b0"}, 64)
    with pytest.raises(ValueError, match="resnet50"):
        specs.plan({"name": "resnet50"})
    with pytest.raises(ValueError, match="'v2x'"):
        specs.parse_model_name("v2x")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_script_measures_v2_models(tmp_path):
    # One V2 model end to end keeps this under a few minutes on 2 shared cores;
    # the spec tests above cover the others.
    flags = [
        "--models=v2b0",
        "--resolution=32",
        "--epochs=1",
        "--budget_seconds=0.5",
        "--batch_size=32",
        "--bn_images=64",
        "--tflite_modes=fp32",
        "--latency_runs=5",
        "--timing_iterations=1",
        "--timing_repeats=1",
        "--timing_warmup=1",
        "--interleaved_repeats=1",
        f"--output_dir={tmp_path}",
    ]
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "scaling_study.py"), *flags],
        capture_output=True,
        text=True,
        timeout=800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 ran, 0 skipped, 0 failed" in proc.stdout
    with open(study.output_paths(str(tmp_path))["table"] + ".json") as f:
        rows = {row["model"]: row for row in json.load(f)["rows"]}
    assert set(rows) == {"v2b0"}
    for name, row in rows.items():
        assert row["family"] == "efficientnetv2"
        assert row["stem_strides"] == 1  # 32 px: the stride keras-effnet train picks.
        model = keras_effnet.get_model(
            name, input_shape=(32, 32, 3), classes=row["classes"], stem_strides=1
        )
        profile = keras_effnet.model_profile(model)
        assert (row["params"], row["flops"]) == (profile["params"], profile["flops"])
        assert abs(row["tflite_fp32_accuracy"] - row["accuracy"]) <= 0.02
