"""TFLite metadata: structure, label checks, and MediaPipe ImageClassifier."""

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from keras_effnet import export

import export_testlib as lib

pytestmark = pytest.mark.timeout(900)

LABELS = [f"digit_{i}" for i in range(10)]

# Runs in a subprocess: MediaPipe can hang its process after a misuse.
_CLASSIFY = r"""
import json, sys
import numpy as np
import mediapipe as mp
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core import base_options

model, images = sys.argv[1], np.load(sys.argv[2])
options = vision.ImageClassifierOptions(
    base_options=base_options.BaseOptions(model_asset_path=model), max_results=1)
names = []
with vision.ImageClassifier.create_from_options(options) as classifier:
    for image in images:
        result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                              data=np.ascontiguousarray(image)))
        names.append(result.classifications[0].categories[0].category_name)
print("RESULT " + json.dumps(names))
"""


def _mediapipe_labels(model_path, images, tmp_path):
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [sys.executable, "-c", _CLASSIFY, str(model_path), str(tmp_path / "images.npy")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def test_metadata_round_trip_and_labels_zip_last():
    tflite = export.add_metadata(lib.converted("lite0", "fp32"), LABELS)
    info, labels = export.read_metadata(tflite)
    assert labels == LABELS
    graph = info.subgraphMetadata[0]
    norm = graph.inputTensorMetadata[0].processUnits[0].options
    assert list(norm.mean) == [0.0] * 3 and list(norm.std) == [1.0] * 3
    size = graph.inputTensorMetadata[0].content.contentProperties.defaultSize
    assert (size.height, size.width) == (lib.SIZE, lib.SIZE)
    assert graph.outputTensorMetadata[0].associatedFiles[0].name == b"labels.txt"
    with zipfile.ZipFile(io.BytesIO(tflite)) as z:
        assert z.namelist() == ["labels.txt"]
    # Metadata does not change the numbers.
    images = lib.arrays("test")[0][:4]
    np.testing.assert_array_equal(
        export.run_tflite(tflite, images), export.run_tflite(lib.converted("lite0", "fp32"), images)
    )
    # Re-adding replaces the metadata entry instead of stacking a second one.
    again = export.add_metadata(tflite, LABELS[::-1])
    assert export.read_metadata(again)[1] == LABELS[::-1]


def test_wrong_label_count_is_refused(tmp_path):
    with pytest.raises(ValueError, match="labels: got 9 labels, the model outputs 10"):
        export.add_metadata(lib.converted("lite0", "fp32"), LABELS[:9])
    (tmp_path / "l.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="got 2 labels"):
        export.add_metadata(lib.converted("lite0", "fp32"), str(tmp_path / "l.txt"))


@pytest.mark.parametrize("mode", ["fp32", "int8"])
def test_mediapipe_classifier_returns_keras_labels(mode, tmp_path):
    model = lib.loaded_model("lite0")
    images, _ = lib.arrays("test")
    # MediaPipe takes uint8 RGB; compare on the same rounded pixels, on
    # images the float model is sure about (quantization may flip near-ties).
    pixels = np.clip(np.round(images), 0, 255).astype(np.uint8)
    chosen = lib.confident(model, pixels.astype(np.float32))[:24]
    assert len(chosen) >= 12
    pixels = pixels[chosen]
    path = tmp_path / f"{mode}.tflite"
    path.write_bytes(export.add_metadata(lib.converted("lite0", mode), LABELS))
    got = _mediapipe_labels(path, pixels, tmp_path)
    keras_top1 = model.predict(pixels.astype(np.float32), verbose=0).argmax(-1)
    litert_top1 = export.run_tflite(str(path), pixels.astype(np.float32)).argmax(-1)
    assert got == [LABELS[i] for i in litert_top1]
    assert got == [LABELS[i] for i in keras_top1]


@pytest.mark.slow
def test_lite0_from_a_timm_file_exports_guarded_int8_that_mediapipe_agrees_with(tmp_path):
    """Converted weights -> int8 through the guard, all-integer, metadata for raw pixels."""
    import keras_effnet
    from keras_effnet.core import checkpoints

    trained = lib.loaded_model("lite0")
    weights = checkpoints.save_timm_safetensors(trained, str(tmp_path / "lite0.safetensors"))
    size = trained.input_shape[1]
    model = keras_effnet.EfficientNetLite0(weights=weights, classes=10, input_shape=(size, size, 3))
    images, _ = lib.arrays("test")
    np.testing.assert_allclose(
        model.predict(images[:16], verbose=0), trained.predict(images[:16], verbose=0), atol=1e-5
    )
    out = tmp_path / "int8.tflite"
    report = export.export(
        model, "int8", str(out), export.ExportOptions(labels=LABELS, latency_runs=0)
    )
    assert report["mode"] == "int8" and out.is_file()
    # Accepted by the guard; float ops only where its fallback put them (this fixture, trained
    # a little differently per CPU, keeps 0-66 tensors in float: docs/export.md "The int8 guard").
    assert (report["census"]["num_float_ops"] > 0) == report["float_fallback"]
    assert report["top1_agreement"] >= 0.95
    # The model normalizes in-graph (with the mean/std its file records), so the metadata
    # says raw pixels: MediaPipe feeds the model as it was trained.
    info, labels = export.read_metadata(out.read_bytes())
    norm = info.subgraphMetadata[0].inputTensorMetadata[0].processUnits[0].options
    assert list(norm.mean) == [0.0] * 3 and list(norm.std) == [1.0] * 3 and labels == LABELS
    pixels = np.clip(np.round(images), 0, 255).astype(np.uint8)
    chosen = lib.confident(trained, pixels.astype(np.float32))[:24]
    pixels = pixels[chosen]
    got = _mediapipe_labels(out, pixels, tmp_path)
    litert_top1 = export.run_tflite(str(out), pixels.astype(np.float32)).argmax(-1)
    assert got == [LABELS[i] for i in litert_top1]
