"""Shared test helpers: reference models in the official weight-file format, file snapshots."""

import hashlib
import os

import h5py
import keras
import numpy as np

from keras_effnet import keras_internals

# The tests folder and the repository, for tests in any subfolder.
TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)

_KERAS2_NAMES = {keras.layers.DepthwiseConv2D: {"kernel": "depthwise_kernel"}}


def randomize_batchnorm(model, seed=0):
    """Gives every BatchNormalization non-trivial statistics (and Normalization too)."""
    rng = np.random.default_rng(seed)
    for layer in keras_internals.flatten_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.1, n).astype("float32"))
            layer.moving_mean.assign(rng.normal(0, 0.1, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
        elif isinstance(layer, keras.layers.Normalization) and layer.weights:
            mean, variance = layer.weights[0], layer.weights[1]
            mean.assign(rng.uniform(0.3, 0.6, mean.shape).astype("float32"))
            variance.assign(rng.uniform(0.04, 0.09, variance.shape).astype("float32"))
            layer.finalize_state()  # Normalization caches mean/variance at build time


def save_official_h5(model, path):
    """Writes `model`'s weights as a Keras-2 `save_weights` file, like the ImageNet files.

    Root attribute `layer_names`; one group per layer; `weight_names` such as
    "block1a_dwconv/depthwise_kernel:0".
    """
    leaves = [l for l in keras_internals.flatten_layers(model) if not keras_internals.sublayers(l)]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode("utf8") for layer in leaves]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.11.0"
        for layer in leaves:
            group = f.create_group(layer.name)
            aliases = _KERAS2_NAMES.get(type(layer), {})
            weight_names = []
            for variable in layer.weights:
                short = aliases.get(variable.name, variable.name)
                weight_names.append(f"{layer.name}/{short}:0".encode("utf8"))
            group.attrs["weight_names"] = weight_names
            for name, variable in zip(weight_names, layer.weights):
                group.create_dataset(name.decode("utf8"), data=keras.ops.convert_to_numpy(variable))


def random_images(n, height, width, seed=0):
    """Float RGB pixels in [0, 255]."""
    return np.random.default_rng(seed).uniform(0, 255, (n, height, width, 3)).astype("float32")


def timm_references(directory, architectures, size, load=None):
    """Runs tests/timm_reference.py in a fresh interpreter and returns its results.

    timm imports torchvision, which crashes a process that has already loaded
    TensorFlow (a segmentation fault at import), so timm's modules are built
    and run in a process of their own. For each architecture the script
    writes `<architecture>.safetensors` (timm's own state dict, with its
    architecture, mean and std as metadata) and `<architecture>.npz`
    (images, logits, pooled features). With `load` (a safetensors path) it
    loads that file into the one architecture with strict=True instead.

    Returns:
        {architecture: dict of numpy arrays}.
    """
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "timm_reference.py")
    command = [sys.executable, script, str(directory), str(size), *architectures]
    if load:
        command += ["--load", str(load)]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    out = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"timm reference failed:\n{out.stderr[-3000:]}")
    return {a: dict(np.load(os.path.join(directory, f"{a}.npz"))) for a in architectures}


def write_image_folder(root, classes, per_split=2, size=(40, 48), seed=0):
    """A `root/<split>/<class>/*` image folder of tiny photos-like files.

    Each class has its own colour; files mix JPEG and PNG, and grayscale and
    RGBA modes, as a user's folder does. Returns the class names.
    """
    import os

    from PIL import Image

    rng = np.random.default_rng(seed)
    names = [f"class_{i}" for i in range(classes)]
    modes = ("RGB", "L", "RGBA")
    for split in ("train", "validation", "test"):
        for c, name in enumerate(names):
            directory = os.path.join(root, split, name)
            os.makedirs(directory, exist_ok=True)
            for i in range(per_split):
                base = np.zeros((*size, 3), np.float32) + rng.uniform(0, 255, 3)
                base[:, : size[1] // (c + 2)] = 255 - base[:, : size[1] // (c + 2)]
                pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
                image = Image.fromarray(pixels).convert(modes[(c + i) % 3])
                suffix = ".jpg" if image.mode != "RGBA" and i % 2 else ".png"
                image.save(os.path.join(directory, f"{split}_{i}{suffix}"))
    return names


def write_run(directory, model, dataset, labels, image_size):
    """A run directory as `train` leaves it: best.keras, config.json, labels.txt."""
    import json
    import os

    from keras_effnet.training.config import ExperimentConfig

    os.makedirs(directory, exist_ok=True)
    config = ExperimentConfig().replace(data={"dataset": dataset, "image_size": image_size})
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump({"config": config.to_dict(), "derived": {}}, f)
    with open(os.path.join(directory, "labels.txt"), "w") as f:
        f.write("".join(f"{n}\n" for n in labels))
    path = os.path.join(directory, "best.keras")
    model.save(path)
    return path


def tiny_classifier(classes, size=32, seed=0):
    """The smallest Lite network (width and depth 0.25, 0.2 M parameters): fast to convert."""
    import keras_effnet

    keras.utils.set_random_seed(seed)
    return keras_effnet.build_efficientnet(
        0.25, 0.25, size, lite=True, input_shape=(size, size, 3), classes=classes, weights=None
    )


def snapshot(root):
    """{relative path: sha256 of the bytes, or "<dir>"} of everything under `root`."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(directory, name), root)] = "<dir>"
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


def profiler_flops(model):
    """FLOPs of `model` at batch 1 by TensorFlow's profiler (the reference of `model_profile`)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    fn = tf.function(lambda x: model(x, training=False))
    spec = tf.TensorSpec((1,) + tuple(model.inputs[0].shape[1:]), tf.float32)
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function(spec))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=frozen.graph, options=options).total_float_ops
