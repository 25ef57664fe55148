"""Native log lines: known noise dropped, everything else replayed (keras_effnet/console.py)."""

import os
import subprocess
import sys

import numpy as np

import keras_effnet
from keras_effnet import console, export
from keras_effnet.export import converter

import export_testlib as lib


def _write_native(text):
    os.write(2, text.encode())


def test_known_noise_is_dropped_and_the_rest_replayed_in_order(capfd, monkeypatch):
    monkeypatch.delenv("KERAS_EFFNET_NATIVE_LOGS", raising=False)
    with console.native_output_filtered():
        _write_native("I0000 00:00:1 cpu_feature_guard.cc:1] some INFO\n")
        _write_native("a real warning\n")
        _write_native("fully_quantize: 0, inference_type: 6, input_inference_type: UINT8\n")
        _write_native("W0000 00:00:1 flatbuffer_export.cc:1] Skipping runtime version metadata\n")
        _write_native("W0000 00:00:1 other.cc:1] a warning that matters\n")
    err = capfd.readouterr().err
    assert err == "a real warning\nW0000 00:00:1 other.cc:1] a warning that matters\n"


def test_asking_for_native_logs_keeps_them(capfd, monkeypatch):
    monkeypatch.setenv("KERAS_EFFNET_NATIVE_LOGS", "1")
    with console.native_output_filtered():
        _write_native("fully_quantize: 0, inference_type: 6\n")
    assert capfd.readouterr().err == "fully_quantize: 0, inference_type: 6\n"


def test_int8_conversion_and_litert_print_nothing(capfd, monkeypatch):
    monkeypatch.delenv("KERAS_EFFNET_NATIVE_LOGS", raising=False)
    images = lib.arrays("train", 16)[0]
    # Untrained and narrow: what is printed does not depend on the weights.
    model = keras_effnet.build_efficientnet(
        0.25,
        0.25,
        lib.SIZE,
        lite=True,
        input_shape=(lib.SIZE, lib.SIZE, 3),
        classes=10,
        weights=None,
    )
    capfd.readouterr()
    tflite = converter.convert(model, "int8", images)
    out = np.asarray(export.run_tflite(tflite, images[:2]))
    captured = capfd.readouterr()
    assert out.shape == (2, 10)
    noise = ("fully_quantize", "XNNPACK", "Ignored output_format", "preserve_all_tensors")
    for text in (captured.out, captured.err):
        assert not any(n in text for n in noise), text[-2000:]


def test_import_prints_no_native_lines():
    """The first public name imports TensorFlow without its start-up lines (_quiet_import.py)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = "import keras_effnet; keras_effnet.EfficientNetB0"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stderr == "" and out.stdout == ""


def test_export_command_prints_the_table_and_what_it_wrote_only(tmp_path):
    """No absl INFO lines from SavedModel saving (TensorFlow restores absl's verbosity there,
    so the command's own setting must hold: commands._main)."""
    model = keras_effnet.build_efficientnet(
        0.25, 0.25, lib.SIZE, lite=True, input_shape=(lib.SIZE, lib.SIZE, 3), classes=10
    )
    model.save(tmp_path / "m.keras")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    cmd = [sys.executable, "-m", "keras_effnet", "export", f"--model_path={tmp_path / 'm.keras'}"]
    cmd += ["--mode=fp32", f"--output={tmp_path / 'm.tflite'}", "--test_limit=32"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = (out.stdout + out.stderr).splitlines()
    assert lines[0].split()[:2] == ["mode", "io"], lines
    assert lines[-1].startswith(f"wrote {tmp_path / 'm.tflite'}"), lines
    assert len(lines) == 4, lines  # Header, rule, the fp32 row, "wrote ...".
