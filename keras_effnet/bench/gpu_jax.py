"""The JAX half of the GPU benchmark: Keras models as stateless, jit-compiled JAX steps.

A step holds a model's variables as device arrays and runs
`model.stateless_call` inside `jax.jit` (Keras 3 guide "Writing a training
loop from scratch in JAX"), compiled ahead of time so that compilation is
timed apart from the steps and XLA's memory plan can be read. Ours and
keras.applications go through exactly the same step. Imports keras, jax and
numpy only (no TensorFlow): the GPU machine has no TensorFlow.
"""

import contextlib
import re
import time

import jax
import jax.numpy as jnp
import keras
import numpy as np

from keras_effnet import keras_internals

_NORMALIZATION = re.compile(r"normalization(_\d+)?")
# One line of optimized HLO that launches work: a fusion or a library call.
_KERNEL_LINE = re.compile(r"=.*\b(fusion|custom-call)\(")


def accelerator():
    """The device everything is measured on (the GPU when there is one)."""
    return jax.devices()[0]


def host():
    """The CPU device (always present in JAX)."""
    return jax.devices("cpu")[0]


@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy ("float32", "mixed_bfloat16") for models built inside."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_on_host(constructor, precision="float32"):
    """Builds `constructor()` under `precision` with its variables in host memory.

    Eager initializers then run as small CPU programs; the steps copy the
    variables to the device they run on (`variables_on`).
    """
    with dtype_policy(precision), jax.default_device(host()):
        return constructor()


def _weighted_leaves(model):
    layers = {}
    for layer in keras_internals.flatten_layers(model):
        if layer.weights and not keras_internals.sublayers(layer):
            # keras.applications leaves its preprocessing layer unnamed, so it
            # is "normalization", "normalization_1", ... (as keras_effnet.core.weights).
            name = "normalization" if _NORMALIZATION.fullmatch(layer.name) else layer.name
            layers.setdefault(name, layer)
    return layers


def copy_weights(source, target):
    """Copies every weight of `source` into `target`, matched by layer name.

        The layer names are keras.applications' (docs/design.md "How the model core differs
    from keras.applications"), so this is the
        same matching `keras_effnet.core.weights.load_legacy_h5` does with a file.

        Raises:
            ValueError: naming the first layer without a counterpart or with a
                different shape.
    """
    src, dst = _weighted_leaves(source), _weighted_leaves(target)
    unmatched = sorted(set(src) ^ set(dst))
    if unmatched:
        raise ValueError(
            f"Layer {unmatched[0]!r} has no counterpart between {source.name!r} and "
            f"{target.name!r} ({len(unmatched)} unmatched)."
        )
    for name, layer in dst.items():
        pairs = list(zip(src[name].weights, layer.weights, strict=True))
        for s, t in pairs:
            if tuple(s.shape) != tuple(t.shape):
                raise ValueError(f"Layer {name!r}: shape {tuple(s.shape)} != {tuple(t.shape)}")
            t.assign(s.value)
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()  # Normalization caches its statistics


def randomize_batchnorm(model, seed=0):
    """Non-trivial BatchNorm (and Normalization) statistics, so inference BN is compared too."""
    rng = np.random.default_rng(seed)
    for layer in keras_internals.flatten_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.1, n).astype("float32"))
            layer.moving_mean.assign(rng.normal(0, 0.1, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
        elif isinstance(layer, keras.layers.Normalization) and layer.weights:
            layer.weights[0].assign(rng.uniform(0.3, 0.6, layer.weights[0].shape))
            layer.weights[1].assign(rng.uniform(0.04, 0.09, layer.weights[1].shape))
            layer.finalize_state()


def variables_on(model, device):
    """(trainable, non-trainable) variable values of `model`, copied to `device`."""
    return (
        [jax.device_put(v.value, device, may_alias=False) for v in model.trainable_variables],
        [jax.device_put(v.value, device, may_alias=False) for v in model.non_trainable_variables],
    )


def forward_fn(model):
    """(trainable, non_trainable, images) -> float32 outputs, training=False."""

    def forward(trainable, non_trainable, images):
        outputs, _ = model.stateless_call(trainable, non_trainable, images, training=False)
        return outputs.astype(jnp.float32)

    return forward


def train_step_fn(model, learning_rate):
    """One SGD step (w -= lr * grad; no optimizer state) on softmax cross-entropy of logits.

    The model must output logits (`classifier_activation=None`). BatchNorm
    statistics and dropout seeds are the non-trainable state it returns.
    """

    def loss_fn(trainable, non_trainable, images, labels):
        logits, non_trainable = model.stateless_call(
            trainable, non_trainable, images, training=True
        )
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
        loss = -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))
        return loss, non_trainable

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(trainable, non_trainable, images, labels):
        (loss, non_trainable), grads = grad_fn(trainable, non_trainable, images, labels)
        trainable = [w - learning_rate * g.astype(w.dtype) for w, g in zip(trainable, grads)]
        return loss, trainable, non_trainable

    return step


def predict(model, images, device, precision, repeat=1):
    """Outputs of `model` on `device` at JAX matmul/conv `precision`, `repeat` times.

    Returns:
        list of numpy arrays (one per repeat; all from one compiled program).
    """
    trainable, non_trainable = variables_on(model, device)
    x = jax.device_put(images, device)
    with jax.default_matmul_precision(precision):
        compiled = jax.jit(forward_fn(model)).lower(trainable, non_trainable, x).compile()
    return [np.asarray(compiled(trainable, non_trainable, x)) for _ in range(repeat)]


def process_peak_bytes(device):
    """The device allocator's peak since process start, or None (CPU, or not reported)."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    return None if not stats else stats.get("peak_bytes_in_use")


class JaxStep:
    """One jit-compiled step of `model` on a fixed random batch, on `device`.

    Calling it runs one step and waits for every output (`block_until_ready`),
    so a timed call is the step's wall time. Training updates the step's own
    copy of the variables (donated, as a real training loop would).

    Args:
        model: a Keras model outputting logits (for "train").
        mode: "train" or "inference".
        batch_size: images per step.
        device: a JAX device.
        learning_rate: SGD learning rate of the train step.
    """

    def __init__(self, model, mode, batch_size, device, seed=0, learning_rate=1e-3):
        if mode not in ("train", "inference"):
            raise ValueError(f'`mode` must be "train" or "inference". Received: mode={mode!r}')
        rng = np.random.default_rng(seed)
        shape = (batch_size,) + tuple(model.inputs[0].shape[1:])
        classes = model.outputs[0].shape[-1]
        self.mode = mode
        self.batch_size = batch_size
        self.images = jax.device_put(rng.uniform(0, 255, shape).astype("float32"), device)
        self.labels = jax.device_put(rng.integers(0, classes, batch_size).astype("int32"), device)
        self.trainable, self.non_trainable = variables_on(model, device)
        start = time.perf_counter()
        if mode == "train":
            fn = jax.jit(train_step_fn(model, learning_rate), donate_argnums=(0, 1))
            lowered = fn.lower(self.trainable, self.non_trainable, self.images, self.labels)
        else:
            lowered = jax.jit(forward_fn(model)).lower(
                self.trainable, self.non_trainable, self.images
            )
        self.compiled = lowered.compile()
        self.compile_s = time.perf_counter() - start

    def __call__(self):
        if self.mode == "train":
            loss, self.trainable, self.non_trainable = self.compiled(
                self.trainable, self.non_trainable, self.images, self.labels
            )
            jax.block_until_ready((loss, self.trainable, self.non_trainable))
        else:
            jax.block_until_ready(self.compiled(self.trainable, self.non_trainable, self.images))

    def planned_peak_bytes(self):
        """XLA's memory plan of the step: arguments + outputs + temporaries - aliased."""
        stats = self.compiled.memory_analysis()
        if stats is None:
            return None
        return int(
            stats.argument_size_in_bytes
            + stats.output_size_in_bytes
            + stats.temp_size_in_bytes
            - stats.alias_size_in_bytes
        )

    def kernel_count(self):
        """Fusions and library calls (cuDNN convolutions, ...) in the optimized program.

        Roughly the kernels one step launches: per-op overhead that FLOPs do not count.
        """
        text = self.compiled.as_text() or ""
        return sum(1 for line in text.splitlines() if _KERNEL_LINE.search(line))
