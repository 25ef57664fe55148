"""The probe of issue 20: every command and the Python API, fed what a clumsy user feeds them.

Each command-line case runs `scripts/<script>` in a forked child of one driver
process (tests/probe_driver.py) inside a work folder holding a tiny model, its
.tflite, a truncated .keras, a text file named .tflite, images, labels and
existing outputs. Every case must end in one clear error line that names the
argument (exit 2, or 1 for absl's own flag checks), with no traceback, and
must leave every file of the work folder byte-identical: nothing lost, no
litter. The Python API cases assert the same of the exception. Slow: about
150 children and a tiny conversion.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import keras_effnet
from keras_effnet import export, io

import helpers
from helpers import snapshot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SIZE = 32
HERE = helpers.TESTS


def _tiny(classes=10):
    return keras_effnet.build_efficientnet(
        0.25, 0.25, SIZE, lite=True, input_shape=(SIZE, SIZE, 3), classes=classes, weights=None
    )


def _png(path, seed, size=40):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(tf.io.encode_png(pixels).numpy())


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    model = _tiny()
    model.save(root / "model.keras")
    _tiny(4).save(root / "model4.keras")
    (root / "model.tflite").write_bytes(export.convert(model, "fp32"))
    data = (root / "model.keras").read_bytes()
    (root / "broken.keras").write_bytes(data[: len(data) // 3])
    (root / "text.tflite").write_text("not a flatbuffer\n")
    (root / "text.keras").write_text("not a zip\n")
    (root / "dir.keras").mkdir()
    (root / "dir.keras" / "keep.txt").write_text("keep\n")
    (root / "outdir").mkdir()
    (root / "outdir" / "keep.txt").write_text("keep\n")
    (root / "existing.json").write_text('{"keep": true}\n')
    (root / "existing.tflite").write_bytes(b"keep")
    (root / "labels3.txt").write_text("a\nb\nc\n")
    (root / "images").mkdir()
    _png(root / "images" / "a.png", 0)
    _png(root / "images" / "b.png", 1)
    (root / "images" / "notes.jpg").write_text("not an image\n")
    (root / "noimages").mkdir()
    (root / "noimages" / "readme.txt").write_text("no images here\n")
    for k, name in enumerate(("cat", "dog", "fox")):
        (root / "photos" / name).mkdir(parents=True)
        for j in range(4):
            _png(root / "photos" / name / f"{j}.png", 10 * k + j)
    (root / "file.txt").write_text("a file, not a directory\n")
    return root


# (script, args, words the error must contain). Exit 2 (ours) or 1 (absl's
# own flag checks); an absl flag error names the flag as "--name".
def _cli_cases():
    cases = []

    def add(script, args, *words):
        cases.append((script, list(args), words))

    # train.py: every refusal happens before any training.
    train = "train.py"
    add(train, ["--model=lite0"], "model_dir")
    add(train, ["--model_dir=file.txt", "--epochs=1"], "model_dir")
    add(train, ["--model_dir=outdir", "--epochs=1", "--image_size=32"], "outdir")
    add(train, ["--model_dir=new", "--model=b9"], "model")
    add(train, ["--model_dir=new", "--image_size=5000"], "image_size")
    add(train, ["--model_dir=new", "--dataset=no_such_folder_or_tfds"], "no_such_folder_or_tfds")
    add(train, ["--model_dir=new", "--dataset=noimages"], "noimages")
    add(train, ["--model_dir=new", "--weights=missing.safetensors"], "missing.safetensors")
    add(train, ["--model_dir=new", "--weights=text.keras"], "text.keras")
    for flag, value in [
        ("epochs", "0"),
        ("epochs", "-3"),
        ("batch_size", "0"),
        ("batch_size", "-8"),
        ("image_size", "-1"),
        ("image_size", "7"),
        ("seed", "-1"),
        ("base_lr", "-0.1"),
        ("base_lr", "0"),
        ("dropout_rate", "1.5"),
        ("drop_connect_rate", "1"),
        ("label_smoothing", "1"),
        ("warmup_epochs", "-2"),
        ("mixup_alpha", "-1"),
        ("crop_min_area", "0"),
        ("randaugment_magnitude", "2"),
        ("optimizer", "adamw2"),
        ("lr_schedule", "linear"),
        ("recipe", "fast"),
        ("progressive", "maybe"),
        ("progressive_start_size", "16"),
        ("width", "-1"),
        ("depth", "-1"),
        ("head_epochs", "-2"),
        ("steps_per_epoch", "-1"),
        ("augment", "spin"),
        ("strategy", "tpu"),
    ]:
        add(train, ["--model_dir=new", f"--{flag}={value}"], flag)

    # evaluate.py
    ev = "evaluate.py"
    add(ev, [], "model_path")
    add(ev, ["--model_path=missing.keras"], "missing.keras")
    add(ev, ["--model_path=dir.keras"], "dir.keras")
    add(ev, ["--model_path=broken.keras"], "broken.keras")
    add(ev, ["--model_path=text.keras"], "text.keras")
    add(ev, ["--model_path=text.tflite"], "text.tflite")
    add(ev, ["--model_path=file.txt"], "file.txt")
    add(ev, ["--model_path=model.keras", "--image_size=64"], "image_size")
    add(ev, ["--model_path=model.tflite", "--image_size=64"], "image_size")
    add(ev, ["--model_path=model.keras", "--batch_size=0"], "batch_size")
    add(ev, ["--model_path=model.keras", "--max_examples=-1"], "max_examples")
    add(ev, ["--model_path=model.tflite", "--num_threads=-5"], "num_threads")
    add(ev, ["--model_path=model.keras", "--split=dev"], "split")
    add(ev, ["--model_path=model.keras", "--output_json=outdir"], "outdir")
    add(ev, ["--model_path=model.keras", "--output_json=images/a.png/x.json"], "output_json")
    add(ev, ["--model_path=model.keras", "--dataset=photos"], "classes")
    add(ev, ["--model_path=model4.keras"], "dataset")
    add(ev, ["--model_path=model4.keras", "--dataset=digits"], "classes")
    add(ev, ["--model_path=model.keras", "--dataset=no_such_folder_or_tfds"], "no_such_folder")
    add(ev, ["--model_path=model.keras", "--dataset=noimages"], "noimages")
    add(ev, ["--model_path=model.keras", "--model_path=broken.keras"], "broken.keras")

    # export_tflite.py
    ex = "export_tflite.py"
    base = ["--model=model.keras", "--dataset=digits"]
    add(ex, ["--output=x.tflite"], "model")
    add(ex, ["--model=model.keras"], "output")
    add(ex, [*base, "--output=outdir", "--mode=savedmodel"], "outdir")
    add(ex, [*base, "--output=existing.json", "--mode=savedmodel"], "existing.json")
    add(ex, [*base, "--output=outdir", "--mode=fp32"], "outdir")
    add(ex, [*base, "--output=dir.keras", "--mode=fp32"], "dir.keras")
    add(ex, [*base, "--output=x.tflite", "--mode=int4"], "mode")
    add(ex, [*base, "--output=x.tflite", "--mode=int8", "--num_calibration=0"], "num_calibration")
    add(ex, [*base, "--output=x.tflite", "--num_calibration=-5"], "num_calibration")
    add(ex, [*base, "--output=x.tflite", "--test_limit=0"], "test_limit")
    add(ex, [*base, "--output=x.tflite", "--threads=-5"], "threads")
    add(ex, [*base, "--output=x.tflite", "--latency_runs=-1"], "latency_runs")
    add(ex, [*base, "--output=x.tflite", "--max_accuracy_drop=lots"], "max_accuracy_drop")
    add(ex, [*base, "--output=x.tflite", "--max_accuracy_drop=-1"], "max_accuracy_drop")
    add(ex, [*base, "--output=x.tflite", "--prune=1.5"], "prune")
    add(ex, [*base, "--output=x.tflite", "--prune=0"], "prune")
    add(ex, [*base, "--output=x.tflite", "--mode=qat", "--qat_epochs=0"], "qat_epochs")
    add(ex, [*base, "--output=x.tflite", "--mode=qat", "--batch_size=0"], "batch_size")
    add(ex, [*base, "--output=x.tflite", "--io_type=int4"], "io_type")
    add(ex, [*base, "--output=x.tflite", "--min_guard_images=-1"], "min_guard_images")
    add(ex, [*base, "--output=x.tflite", "--labels=labels3.txt"], "labels")
    add(ex, [*base, "--output=x.tflite", "--labels=missing.txt"], "missing.txt")
    add(ex, ["--model=model.keras", "--dataset=photos", "--output=x.tflite"], "classes")
    add(ex, ["--model=model4.keras", "--output=x.tflite"], "dataset")
    add(ex, ["--model=missing.keras", "--output=x.tflite"], "missing.keras")
    add(ex, ["--model=broken.keras", "--output=x.tflite", "--dataset=digits"], "broken.keras")
    add(ex, ["--model=text.keras", "--output=x.tflite", "--dataset=digits"], "text.keras")
    add(ex, ["--model=dir.keras", "--output=x.tflite", "--dataset=digits"], "dir.keras")
    add(ex, ["--model=model.tflite", "--output=x.tflite", "--dataset=digits"], "model")
    add(ex, [*base, "--output=x.tflite", "--dataset=no_such_folder_or_tfds"], "no_such_folder")
    add(ex, [*base, "--output=images/a.png/x.tflite"], "output")
    add(ex, [*base, "--output=x.tflite", "--mode=int8", "--prune_epochs=0"], "prune_epochs")

    # predict.py
    pr = "predict.py"
    add(pr, ["images"], "model_path")
    add(pr, ["--model_path=model.keras"], "image")
    add(pr, ["--model_path=model.keras", "missing.png"], "missing.png")
    add(pr, ["--model_path=model.keras", "noimages"], "noimages")
    add(pr, ["--model_path=model.keras", "images/notes.jpg"], "notes.jpg")
    add(pr, ["--model_path=model.keras", "--top_k=0", "images/a.png"], "top_k")
    add(pr, ["--model_path=model.keras", "--top_k=-1", "images/a.png"], "top_k")
    add(pr, ["--model_path=model.keras", "--resize=nearest", "images/a.png"], "resize")
    add(pr, ["--model_path=model.tflite", "--num_threads=-1", "images/a.png"], "num_threads")
    add(pr, ["--model_path=model.keras", "--labels=labels3.txt", "images/a.png"], "labels")
    add(pr, ["--model_path=model.keras", "--labels=missing.txt", "images/a.png"], "missing.txt")
    add(pr, ["--model_path=missing.keras", "images/a.png"], "missing.keras")
    add(pr, ["--model_path=broken.keras", "images/a.png"], "broken.keras")
    add(pr, ["--model_path=text.tflite", "images/a.png"], "text.tflite")
    add(pr, ["--model_path=file.txt", "images/a.png"], "file.txt")
    add(pr, ["--model_path=dir.keras", "images/a.png"], "dir.keras")

    # main.py (the main job): refusals before training.
    add("main.py", ["--model_dir=file.txt"], "model_dir")
    add("main.py", ["--model_dir=outdir"], "outdir")
    add("main.py", ["--model_dir=new", "--epochs=0"], "epochs")
    add("main.py", ["--model_dir=new", "--mode=int4"], "mode")
    add("main.py", ["--model_dir=new", "--model=b9"], "model")
    add("main.py", ["--model_dir=new", "--image_size=-4"], "image_size")
    add("main.py", ["--model_dir=new", "--batch_size=0"], "batch_size")
    add("main.py", ["--model_dir=new", "--dataset=noimages"], "noimages")

    # scaling_study.py and grid_search.py: bad settings before any cell runs.
    st = "scaling_study.py"
    add(st, ["--output_dir=study", "--models=b9"], "b9")
    add(st, ["--output_dir=study", "--phis=x"], "phis")
    add(st, ["--output_dir=study", "--alpha=0", "--phis=1"], "alpha")
    add(st, ["--output_dir=study", "--resolution_scale=0"], "resolution_scale")
    add(st, ["--output_dir=study", "--resolution=-1"], "resolution")
    add(st, ["--output_dir=file.txt"], "file.txt")
    add(st, ["--output_dir=study", "--epochs=0"], "epochs")
    add(st, ["--output_dir=study", "--seeds=-1"], "seeds")
    gs = "grid_search.py"
    add(gs, ["--output_dir=grid", "--step=0"], "step")
    add(gs, ["--output_dir=grid", "--start=2", "--stop=1"], "start")
    add(gs, ["--output_dir=grid", "--tolerance=-1"], "tolerance")
    add(gs, ["--output_dir=grid", "--max_candidates=-1"], "max_candidates")
    add(gs, ["--output_dir=grid", "--target=0"], "target")
    add(gs, ["--output_dir=grid", "--base_resolution=0"], "base_resolution")
    add(gs, ["--output_dir=grid", "--order=random"], "order")
    add(gs, ["--output_dir=file.txt"], "file.txt")

    # profile_models.py
    add("profile_models.py", ["--models=b9"], "b9")
    add("profile_models.py", ["--classes=0"], "classes")
    add("profile_models.py", ["--resolution=-1"], "resolution")
    return cases


CLI_CASES = _cli_cases()


@pytest.fixture(scope="module")
def cli_results(work, tmp_path_factory):
    logs = tmp_path_factory.mktemp("probe-results")
    cases = [
        {"id": i, "script": script, "args": args} for i, (script, args, _) in enumerate(CLI_CASES)
    ]
    (logs / "cases.json").write_text(json.dumps(cases))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, "probe_driver.py"),
            str(logs / "cases.json"),
            str(logs / "results.json"),
            str(work),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1700,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["id"]: r for r in json.loads((logs / "results.json").read_text())}


def _error_lines(text):
    """The lines a user reads as the error, without TensorFlow's native noise."""
    noise = re.compile(r"^[IWE]\d{4} |^WARNING: All log messages|oneDNN|cuda|cuInit")
    return [line for line in text.splitlines() if line.strip() and not noise.search(line)]


@pytest.mark.parametrize(
    "index", range(len(CLI_CASES)), ids=[f"{s}:{' '.join(a)}" for s, a, _ in CLI_CASES]
)
def test_cli_case_is_one_clear_line_and_loses_nothing(index, cli_results):
    script, args, words = CLI_CASES[index]
    result = cli_results[index]
    text = result["out"] + result["err"]
    assert "Traceback" not in text, text[-3000:]
    assert result["code"] in (1, 2), (result["code"], text[-2000:])
    errors = _error_lines(result["err"])
    assert errors, text[-2000:]
    message = " ".join(errors[-2:]).lower()
    for word in words:
        assert word.lower() in message, (word, errors[-3:])
    assert result["changed"] == [], result["changed"]


# The Python API: one exception, naming the argument and the value.
def _api_cases():
    return [
        (lambda w: keras_effnet.get_model("b9", weights=None), ValueError, "b9"),
        (lambda w: keras_effnet.EfficientNetB0(weights="nope.h5"), ValueError, "nope.h5"),
        (lambda w: keras_effnet.EfficientNetB0(weights=None, classes=0), ValueError, "classes"),
        (
            lambda w: keras_effnet.EfficientNetB0(weights=None, pooling="median"),
            ValueError,
            "pooling",
        ),
        (
            lambda w: keras_effnet.EfficientNetB0(weights=None, input_shape=(8, 8, 3)),
            ValueError,
            "input_shape",
        ),
        (
            lambda w: keras_effnet.build_efficientnet(-1, 1, 224, weights=None),
            ValueError,
            "width",
        ),
        (lambda w: io.load_model(str(w / "broken.keras")), Exception, "broken.keras"),
        (lambda w: io.load_model(str(w / "text.keras")), Exception, "text.keras"),
        (lambda w: io.load_model(str(w / "missing.keras")), Exception, "missing.keras"),
        (
            lambda w: keras_effnet.predict(str(w / "model.keras"), [str(w / "missing.png")]),
            Exception,
            "missing.png",
        ),
        (
            lambda w: keras_effnet.predict(str(w / "model.keras"), [str(w / "images")], top_k=0),
            ValueError,
            "top_k",
        ),
        (
            lambda w: keras_effnet.predict(str(w / "text.tflite"), [str(w / "images")]),
            Exception,
            "text.tflite",
        ),
        (
            lambda w: export.ExportOptions(num_calibration=0),
            ValueError,
            "num_calibration",
        ),
        (lambda w: export.ExportOptions(test_limit=-1), ValueError, "test_limit"),
        (lambda w: export.ExportOptions(threads=-2), ValueError, "threads"),
        (
            lambda w: export.export(
                str(w / "model.keras"), "int4", str(w / "x.tflite"), export.ExportOptions()
            ),
            ValueError,
            "mode",
        ),
        (
            lambda w: export.export(
                str(w / "model.keras"),
                "savedmodel",
                str(w / "outdir"),
                export.ExportOptions(dataset="digits"),
            ),
            Exception,
            "outdir",
        ),
        (
            lambda w: export.export(
                str(w / "model.keras"),
                "fp32",
                str(w / "x.tflite"),
                export.ExportOptions(dataset=str(w / "photos")),
            ),
            Exception,
            "classes",
        ),
        (
            lambda w: io.write_json_atomic(str(w / "outdir"), {"a": 1}),
            Exception,
            "outdir",
        ),
        (
            lambda w: io.write_bytes_atomic(str(w / "images" / "a.png" / "x"), b"x"),
            Exception,
            "a.png",
        ),
    ]


API_CASES = _api_cases()


@pytest.mark.parametrize("index", range(len(API_CASES)))
def test_api_case_raises_one_line_and_loses_nothing(index, work):
    call, kind, word = API_CASES[index]
    before = snapshot(str(work))
    with pytest.raises(kind) as raised:
        call(work)
    message = str(raised.value)
    assert word.lower() in message.lower(), message
    assert len(message.strip().splitlines()) <= 2, message
    assert snapshot(str(work)) == before


def test_the_probe_is_at_least_150_cases():
    assert len(CLI_CASES) + len(API_CASES) >= 150
