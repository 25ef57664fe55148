"""Guards for keras_effnet/keras_internals.py: each private Keras API it wraps still behaves.

A failure here means an upgrade of Keras (or TensorFlow) changed a private
API we depend on; the message names the version. Fix the one function in
keras_internals.py, not its callers.
"""

import inspect
import os

import keras
import numpy as np
import pytest

from keras_effnet import keras_internals
from keras_effnet.core import graph

KERAS = f"Keras {keras.__version__}"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _changed(what):
    return f"{KERAS} changed the private API behind keras_internals.{what}; see its docstring"


def _params(fn):
    return list(inspect.signature(fn).parameters)


class _Pair(keras.layers.Layer):
    """Two sublayers, the second one composite: enough to pin Keras' walk order."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Dense(3, name=f"{self.name}_first")
        self.inner = _Leafs(name=f"{self.name}_inner")

    def call(self, x):
        return self.inner(self.first(x))


class _Leafs(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.a = keras.layers.Dense(3, name=f"{self.name}_a")
        self.b = keras.layers.Dropout(0.5, name=f"{self.name}_b")

    def call(self, x):
        return self.b(self.a(x))


def _model():
    inputs = keras.Input((4,), name="x")
    x = keras.layers.Dense(3, name="head")(inputs)
    x = _Pair(name="pair")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(x), name="guarded")


def test_flatten_layers_keeps_keras_order():
    assert hasattr(keras.layers.Layer, "_flatten_layers"), _changed("flatten_layers")
    model = _model()
    names = [layer.name for layer in keras_internals.flatten_layers(model)]
    # Top level in order; below it Keras visits a layer's sublayers last first.
    expected = ["x", "head", "pair", "pair_inner", "pair_inner_b", "pair_inner_a", "pair_first"]
    expected.append("out")
    assert names == expected, _changed("flatten_layers") + f": got {names}"
    with_self = keras_internals.flatten_layers(model, include_self=True)
    assert with_self[0] is model, _changed("flatten_layers")
    top = [layer.name for layer in keras_internals.flatten_layers(model, recursive=False)]
    assert top == [layer.name for layer in model.layers], _changed("flatten_layers")


def test_sublayers_of_a_layer_and_of_a_leaf():
    pair = _model().get_layer("pair")
    names = [layer.name for layer in keras_internals.sublayers(pair)]
    assert names == ["pair_first", "pair_inner"], _changed("sublayers") + f": got {names}"
    assert keras_internals.sublayers(pair.first) == [], _changed("sublayers")


def test_seed_generators_are_the_dropout_generators():
    model = _model()
    dropout = model.get_layer("pair").inner.b
    found = keras_internals.seed_generators(dropout)
    assert len(found) == 1, _changed("seed_generators") + f": got {found}"
    assert isinstance(found[0], keras.random.SeedGenerator), _changed("seed_generators")
    # The generator's state is one of the layer's variables.
    assert any(v is found[0].state for v in dropout.variables), _changed("seed_generators")
    assert keras_internals.seed_generators(model.get_layer("head")) == []


def test_run_through_graph_replays_the_nodes_in_order():
    assert hasattr(keras.Model, "_run_through_graph") or hasattr(_model(), "_run_through_graph"), (
        _changed("run_through_graph")
    )
    model = _model()
    seen = []

    def operation_fn(op):
        seen.append(op.name)
        return op

    inputs = keras.Input((4,), name="x2")
    outputs = keras_internals.run_through_graph(model, inputs, operation_fn)
    assert seen == ["head", "pair", "out"], _changed("run_through_graph") + f": got {seen}"
    assert tuple(outputs.shape) == (None, 2), _changed("run_through_graph")
    replay = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    np.testing.assert_allclose(replay(x), model(x), atol=1e-6)


def test_symbolic_build_hooks_exist():
    model = _model()
    for name in ("_symbolic_build", "_maybe_symbolic_build"):
        method = getattr(model, name, None)
        assert callable(method), _changed("build_for_distributed_fit") + f": no Model.{name}"
        assert "data_batch" in _params(method), _changed("build_for_distributed_fit")


def test_build_for_distributed_fit_builds_metrics_and_disables_the_step():
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the multi-worker workaround is for the TensorFlow backend")
    model = _model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    spec = (tf.TensorSpec((None, 4), tf.float32), tf.TensorSpec((None,), tf.int32))
    assert not model.optimizer.built
    keras_internals.build_for_distributed_fit(model, spec)
    # The step builds the compiled metrics and the optimizer from the spec alone.
    assert model.optimizer.built, _changed("build_for_distributed_fit")
    assert all(getattr(m, "built", True) for m in model.metrics), _changed(
        "build_for_distributed_fit"
    )
    assert model._maybe_symbolic_build(data_batch=None) is None


def test_tf_reduce_per_replica_is_a_patchable_module_function():
    pytest.importorskip("tensorflow")
    try:
        from keras.src.backend.tensorflow import trainer as tf_trainer
    except ImportError as err:  # pragma: no cover - only on a Keras change
        pytest.fail(_changed("wrap_tf_reduce_per_replica") + f": {err}")
    original = getattr(tf_trainer, "reduce_per_replica", None)
    assert callable(original), _changed("wrap_tf_reduce_per_replica")
    assert _params(original)[:3] == ["values", "strategy", "reduction"], _changed(
        "wrap_tf_reduce_per_replica"
    )
    calls = []

    def wrap(inner):
        def patched(values, strategy, reduction="auto"):
            calls.append(reduction)
            return inner(values, strategy, reduction)

        return patched

    try:
        if getattr(original, "keras_effnet_patch", False):
            pytest.skip("already patched in this process by a multi-worker test")
        assert keras_internals.wrap_tf_reduce_per_replica(wrap) is True
        assert keras_internals.wrap_tf_reduce_per_replica(wrap) is False  # once per process
        tf_trainer.reduce_per_replica(1.0, None, "auto")
        assert calls == ["auto"], _changed("wrap_tf_reduce_per_replica")
    finally:
        tf_trainer.reduce_per_replica = original


def test_graph_flattening_uses_public_apis_only():
    # graph.py re-traces with keras.models.clone_model; the standard-layer test
    # reads the public keras.layers namespace, not module paths.
    assert graph._is_standard(keras.layers.Dense(1))
    assert not graph._is_standard(_Pair())
    assert not graph._is_standard(keras.layers.Layer())
    assert not graph._is_standard(_model())


def test_private_keras_apis_are_used_in_keras_internals_only():
    """No other package module reaches into Keras internals.

    docs/design.md "Package map (where each concept lives)": keras_internals.py holds them all.
    """
    offenders = []
    for top in ("keras_effnet", "export"):
        for root, _, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                path = os.path.join(root, name)
                if not name.endswith(".py") or path.endswith("keras_internals.py"):
                    continue
                with open(path) as f:
                    text = f.read()
                for needle in (
                    "._flatten_layers(",
                    "._run_through_graph(",
                    "._symbolic_build(",
                    "keras.src.",
                    "._seed_generators",
                ):
                    if needle in text:
                        offenders.append(f"{os.path.relpath(path, REPO)}: {needle}")
    assert not offenders, offenders
