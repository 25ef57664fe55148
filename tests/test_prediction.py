"""keras_effnet.predict: top-k of image files for .keras and .tflite, and agreement with MediaPipe."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet import export, prediction, preprocess
from keras_effnet.errors import ConfigError
from keras_effnet.export import datasets, verification

import helpers

SIZE = 32
CLASSES = 4
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Metadata and MediaPipe itself come with the 'android' extra (setup.cfg).
HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
needs_mediapipe = pytest.mark.skipif(not HAS_MEDIAPIPE, reason="needs the 'android' extra")


@pytest.fixture(scope="module")
def photo_model(tmp_path_factory):
    """A tiny 4-class Lite (32 px, untrained) in its run directory, and its fp32 .tflite with labels."""
    root = tmp_path_factory.mktemp("predict")
    names = helpers.write_image_folder(str(root / "data"), CLASSES)
    model = helpers.tiny_classifier(CLASSES, SIZE)
    helpers.randomize_batchnorm(model)  # Spread the scores: an untrained model is near-uniform.
    path = helpers.write_run(str(root / "run"), model, str(root / "data"), names, SIZE)
    tflite = root / "m.tflite"  # Outside the run: its labels come from the metadata.
    converted = export.convert(model, "fp32")
    if HAS_MEDIAPIPE:
        converted = export.add_metadata(converted, [n.upper() for n in names])
    tflite.write_bytes(converted)
    return path, str(tflite), str(root / "data")


def test_decode_makes_gray_and_rgba_rgb(tmp_path):
    from PIL import Image

    for mode in ("L", "RGBA", "P"):
        Image.new(mode, (5, 4)).save(tmp_path / f"{mode}.png")
    for path in preprocess.image_files(tmp_path):
        assert preprocess.decode(path).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="no such file"):
        preprocess.image_files([str(tmp_path / "missing.jpg")])


def test_mediapipe_resize_stretches_without_half_pixel_offset():
    image = np.arange(4 * 8 * 3, dtype=np.uint8).reshape(4, 8, 3)
    out = preprocess.mediapipe_resize(image, (2, 2))
    # Output pixel (y, x) samples source (2y, 4x) exactly: the corners map to the corners.
    np.testing.assert_array_equal(out, image[::2, ::4])
    up = preprocess.mediapipe_resize(image[:1, :2], (1, 4))  # Border pixels replicated.
    assert up.dtype == np.uint8 and (up[0, -1] == image[0, 1]).all()


def test_predict_keras_and_tflite_agree(photo_model):
    path, tflite, data = photo_model
    files = os.path.join(data, "test")
    from_keras = prediction.predict(path, files, top_k=9)
    from_tflite = keras_effnet.predict(tflite, files, top_k=2)
    assert len(from_keras) == 2 * CLASSES and all(len(p.categories) == CLASSES for p in from_keras)
    first = from_keras[0].categories[0]
    assert isinstance(first, prediction.Category) and first.label == f"class_{first.index}"
    for k, t in zip(from_keras, from_tflite):
        assert k.image == t.image and len(t.categories) == 2
        assert t.categories[0].index == k.categories[0].index
        metadata = k.categories[0].label.upper() if HAS_MEDIAPIPE else None
        assert t.categories[0].label == metadata  # Outside the run: labels from the metadata.
        assert t.categories[0].score == pytest.approx(k.categories[0].score, abs=1e-4)
    with pytest.raises(ConfigError, match="outputs 4 classes but the labels argument has 2 labels"):
        prediction.predict(path, files, labels=["a", "b"])
    with pytest.raises(ValueError, match="top_k"):
        prediction.predict(path, files, top_k=0)


def test_training_resize_is_what_verification_runs(photo_model):
    """predict(resize="training") sees the pixels export verification scores."""
    path, tflite, data = photo_model
    files = preprocess.image_files(
        [os.path.join(data, "test", c) for c in sorted(os.listdir(os.path.join(data, "test")))]
    )
    ours = preprocess.load_images(files, (SIZE, SIZE), "training")
    theirs, _ = datasets.load_arrays(data, "test", (SIZE, SIZE))
    key = lambda a: a[np.lexsort(a.reshape(len(a), -1)[:, :8].T)]  # noqa: E731  (same order)
    np.testing.assert_allclose(key(ours), key(theirs), atol=1e-3)
    scores = {
        p.image: p.categories[0].score
        for p in prediction.predict(tflite, files, 1, resize="training")
    }
    verified = verification.run_tflite(tflite, ours).max(axis=1)
    np.testing.assert_allclose([scores[f] for f in files], verified, atol=1e-6)


def test_predict_cli_json_and_a_quiet_console(photo_model):
    path, _, data = photo_model
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    script = os.path.join(REPO, "scripts", "predict.py")
    one = os.path.join(data, "test", "class_0")
    out = subprocess.run(
        [sys.executable, script, f"--model_path={path}", "--json", "--top_k=2", one],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr[-2000:]
    rows = json.loads(out.stdout)
    assert len(rows) == 2 and [len(r["categories"]) for r in rows] == [2, 2]
    assert set(rows[0]["categories"][0]) == {"index", "label", "score"}
    table = prediction.format_table(prediction.predict(path, one, top_k=2))
    assert table.splitlines()[0].split() == ["image", "rank", "index", "label", "score"]


def _mediapipe_scores(tflite_bytes, images, n):
    """MediaPipe ImageClassifier's score of every class for each uint8 RGB image."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_buffer=tflite_bytes), max_results=-1
    )
    rows = []
    with vision.ImageClassifier.create_from_options(options) as clf:
        for image in images:
            result = clf.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
            values = np.zeros(n)
            for c in result.classifications[0].categories:
                values[c.index] = c.score
            rows.append(values)
    return np.array(rows)


@needs_mediapipe
@pytest.mark.slow
def test_int8_file_scores_exactly_as_mediapipe(photo_model, tmp_path):
    """A uint8 .tflite: MediaPipe feeds raw pixels; predict's scores equal its, bit for bit."""
    path, _, data = photo_model
    model = keras.saving.load_model(path)
    files = preprocess.image_files(data)
    calibration = preprocess.load_images(files, (SIZE, SIZE), "training")
    tflite = tmp_path / "m_int8.tflite"
    tflite.write_bytes(export.add_metadata(export.convert(model, "int8", calibration)))
    predicted = prediction.predict(str(tflite), files, top_k=CLASSES)
    images = [np.ascontiguousarray(preprocess.decode(f)) for f in files]
    theirs = _mediapipe_scores(tflite.read_bytes(), images, CLASSES)
    for p, row in zip(predicted, theirs):
        assert [row[c.index] for c in p.categories] == [c.score for c in p.categories]


@needs_mediapipe
def test_predict_resize_tensor_equals_mediapipe(photo_model):
    """MediaPipe's ImageClassifier sees exactly our "mediapipe" resize, and scores as predict."""
    path, tflite, data = photo_model
    # A model whose "scores" are its input pixels shows the tensor MediaPipe built.
    inputs = keras.Input((SIZE, SIZE, 3), batch_size=1)
    echo = keras.Model(inputs, keras.layers.Reshape((SIZE * SIZE * 3,))(inputs))
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in [(480, 640), (9, 7), (100, 33)]
    ]
    seen = _mediapipe_scores(
        export.add_metadata(export.convert(echo, "fp32")), images, SIZE * SIZE * 3
    )
    for image, tensor in zip(images, seen):  # Down, up, mixed.
        np.testing.assert_array_equal(
            tensor.reshape(SIZE, SIZE, 3), preprocess.mediapipe_resize(image, (SIZE, SIZE))
        )
    files = preprocess.image_files(os.path.join(data, "test"))
    predicted = prediction.predict(tflite, files, top_k=CLASSES)
    theirs = _mediapipe_scores(
        open(tflite, "rb").read(),
        [np.ascontiguousarray(preprocess.decode(f)) for f in files],
        CLASSES,
    )
    for p, row in zip(predicted, theirs):
        assert int(np.argmax(row)) == p.categories[0].index
        np.testing.assert_allclose(
            [row[c.index] for c in p.categories], [c.score for c in p.categories], atol=1e-6
        )
