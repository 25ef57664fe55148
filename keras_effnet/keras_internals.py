"""Every private Keras / TensorFlow API keras_effnet uses, in one place.

Public APIs come first (`keras.Model.layers`, `keras.models.clone_model`,
...); what is here has no public equivalent in Keras 3. Each function says
why, with the upstream issue or documentation section, and
tests/test_keras_internals.py fails loudly, naming the Keras version, when
one of them changes upstream. Only `keras` is imported at the top: the model
core runs on JAX and PyTorch too, so TensorFlow-only internals are imported
inside the function that needs them.
"""

import keras


def flatten_layers(layer, include_self=False, recursive=True) -> list:
    """Every layer tracked by `layer`, nested ones included, in Keras' own order.

    Keras 3 has no public recursive walk: `keras.Model.layers` lists the top
    level only and `keras.layers.Layer` has no `layers` at all, so the
    sublayers of a composite layer (`MBConv`'s convs, a nested model's
    layers) are reachable only through `Layer._flatten_layers`, which Keras
    itself uses for `Model.layers`, `trainable` and `get_layer`. The
    long-standing requests for it: keras-team/keras#9590 (`get_layer` cannot
    find nested layers), keras-team/keras#4398 (flatten nested models).

    The order is Keras' (`layer`'s own sublayers in order; below the top
    level, a depth-first walk that visits each layer's sublayers last first);
    name maps, the timm checkpoint mapping and the seed generators saved in
    a backup depend on it, so it is kept rather than re-implemented.
    tf_keras layers have the same method (export/quant/translate.py copies
    weights in both directions).
    """
    return list(layer._flatten_layers(include_self=include_self, recursive=recursive))


def sublayers(layer) -> list:
    """The layers `layer` tracks directly (no recursion); [] for a leaf layer.

    Same reason as `flatten_layers`: `keras.Model.layers` is this for models,
    and plain layers have no public equivalent.
    """
    return flatten_layers(layer, include_self=False, recursive=False)


def seed_generators(layer) -> list:
    """The `keras.random.SeedGenerator`s `layer` itself owns (not its sublayers').

    A `SeedGenerator`'s state variable shows up in `Layer.variables`, mixed
    with the layer's weights and nothing public tells them apart; the
    generators themselves are only in `Layer._seed_generators`
    (keras/src/layers/layer.py, which `Layer.variables` reads).
    Resuming a run must restore them for dropout and stochastic depth to
    draw what the uninterrupted run draws.
    """
    return list(getattr(layer, "_seed_generators", []))


def run_through_graph(model, inputs, operation_fn):
    """Replays a functional `model`'s nodes on `inputs`, calling `operation_fn(layer)(...)`.

    The public wrapper, `keras.models.clone_model(clone_function=...,
    call_function=...)`, accepts only Keras 3 `KerasTensor` inputs (its
    documented `input_tensors`), so it cannot rebuild a graph in tf_keras
    (`export/quant/translate.py` hands it tf_keras tensors, because tfmot
    quantizes Keras 2 graphs only: tensorflow/model-optimization#1119).
    `Functional._run_through_graph` is what `clone_model` calls underneath.
    """
    return model._run_through_graph(inputs, operation_fn=operation_fn)


def build_for_distributed_fit(model, data_spec) -> None:
    """Builds `model`'s metrics from `data_spec` now, and makes fit() skip that step.

    tensorflow/tensorflow#72388 (closed unfixed; Keras 3.15 still has it):
    fit() and evaluate() build their metrics by reducing the first
    distributed batch with `strategy.reduce("MEAN", (x, y))`, which
    MultiWorkerMirroredStrategy cannot do for a tuple. No public argument
    turns that off; `Trainer._symbolic_build` is the step, and
    `_maybe_symbolic_build` is the TF trainer's hook that runs it.
    Call under the strategy's scope.
    """
    model._symbolic_build(data_batch=data_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def wrap_tf_reduce_per_replica(wrap) -> bool:
    """Replaces the TF trainer's `reduce_per_replica` with `wrap(original)`, once per process.

    tensorflow/tensorflow#72388: Keras 3's TensorFlow trainer reduces each
    step's logs with `strategy.reduce("MEAN", v, axis=0)`, invalid for
    scalars under MultiWorkerMirroredStrategy. The function is a module
    global of keras/src/backend/tensorflow/trainer.py with no public hook.
    TensorFlow-only, so imported here, not at the top.

    Returns:
      True when it patched now, False when an earlier call already had.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "keras_effnet_patch", False):
        return False
    patched = wrap(original)
    patched.keras_effnet_patch = True
    tf_trainer.reduce_per_replica = patched
    return True


def keras_version() -> str:
    """The installed Keras version, for the messages of tests that guard this module."""
    return keras.__version__
