"""Builds the network of a `ModelConfig` and prepares it for training."""

import os

import keras
import numpy as np
import tensorflow as tf

import keras_effnet
from keras_effnet import io, keras_internals
from keras_effnet.core import pretrained, variants
from keras_effnet.errors import ConfigError

# Layers that train during the head-only epochs (`set_backbone_trainable`).
HEAD_LAYERS = ("predictions",)


def _pretrained_kind(weights):
    """True for weights a constructor loads itself ("imagenet", timm tags, .safetensors)."""
    return bool(weights) and (
        weights == "imagenet"
        or weights.startswith(pretrained.TIMM_PREFIX)
        or weights.endswith(".safetensors")
    )


def weights_resolution(weights, variant):
    """The resolution `weights` were trained at: a timm tag's, else the variant's native one."""
    if weights and weights.startswith(pretrained.TIMM_PREFIX):
        try:
            return pretrained.parse_timm_name(weights[len(pretrained.TIMM_PREFIX) :]).train_size
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return variant.resolution


def weights_normalization(weights, variant_name):
    """The input normalization pretrained `weights` expect (None for other sources)."""
    if not _pretrained_kind(weights):
        return None
    try:
        source = pretrained.resolve(weights, variant_name, include_top=False)
        if source.kind == "timm":
            return source.timm_tag.normalization
        if source.kind == "safetensors":
            from safetensors import safe_open

            with safe_open(source.path, framework="numpy") as f:
                metadata = f.metadata()
            return pretrained.local_file_info(source.path, metadata, variant_name)[1]
    except Exception as e:  # safetensors' own error types included: one line.
        raise ConfigError(f"{e}".splitlines()[0] if str(e) else type(e).__name__) from None
    return None


def build_model(model_config, num_classes, image_size):
    """Builds the (untrained) classifier described by `model_config`.

    Width/depth overrides build a custom-scaled member of the family through
    `keras_effnet.build_efficientnet` (the Lite switches follow the variant).
    """
    variant = variants.get_variant(model_config.name)
    dropout = variant.dropout if model_config.dropout_rate is None else model_config.dropout_rate
    kwargs = dict(
        input_shape=(image_size, image_size, 3),
        classes=num_classes,
        weights=None,
        dropout_rate=dropout,
        # Unresolved "auto" (None) builds the paper's rate; `train` resolves it first.
        drop_connect_rate=0.2
        if model_config.drop_connect_rate is None
        else model_config.drop_connect_rate,
        # The normalization the starting weights were trained with (docs/training.md "Fine-tuning").
        input_normalization=weights_normalization(model_config.weights, variant.name),
        # Unresolved "auto" (None) builds the paper's stride; `train` resolves it first.
        stem_strides=model_config.stem_strides or 2,
    )
    if model_config.width is not None or model_config.depth is not None:  # None: the variant's.
        model = keras_effnet.build_efficientnet(
            model_config.width or variant.width,
            model_config.depth or variant.depth,
            variant.resolution,
            lite=variant.lite,
            baseline=variant.baseline,
            name=f"{variant.model_name}_w{model_config.width or variant.width:g}"
            f"_d{model_config.depth or variant.depth:g}".replace(".", "_"),
            **kwargs,
        )
    else:
        model = keras_effnet.get_model(variant.name, **kwargs)
    zero_classifier(model)
    return model


def zero_classifier(model):
    """Starts the classifier at zero: every class equally likely, loss log(classes).

    keras.applications' classifier initializer (VarianceScaling 1/3, fan_out)
    is scaled for 1,000 classes; with 10 its initial logits have a standard
    deviation of ~4 and the first epochs of a short run go into shrinking them
    (initial loss ~8 instead of 2.3). The first step's gradient reaches the
    kernel (features x (p - y)), so nothing stays stuck at zero.
    """
    layer = next((l for l in model.layers if l.name == "predictions"), None)
    if layer is not None:
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])


def batch_norm_layers(model):
    """Every BatchNormalization layer, nested ones included."""
    return [
        layer
        for layer in keras_internals.flatten_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def set_batch_norm(model, *, synchronized=False, frozen=False):
    """Switches BatchNorm layers to cross-replica statistics and/or freezes them.

    `synchronized` is read at call time by Keras 3's BatchNormalization (TF
    backend), so setting it on built layers works. A frozen BN layer
    (`trainable=False`) runs in inference mode: moving statistics stay fixed
    and gamma/beta are not trained, the usual way to fine-tune on small data.

    Returns:
        The number of BatchNorm layers changed.
    """
    layers = batch_norm_layers(model)
    for layer in layers:
        if synchronized:
            layer.synchronized = True
        if frozen:
            layer.trainable = False
    return len(layers)


def set_backbone_trainable(model, trainable, *, freeze_bn):
    """Freezes or unfreezes every layer but the classifier, keeping BatchNorm as `freeze_bn` says.

    The train step is retraced (`model.train_function = None`): the traced
    step captured the trainable variables of its time. The optimizer must
    already be built for the full set (`builders.build_training_model`).
    """
    for layer in model.layers:
        if layer.weights and layer.name not in HEAD_LAYERS:
            layer.trainable = trainable
    set_batch_norm(model, frozen=freeze_bn)
    model.train_function = None


def _source_model(weights, model_config, image_size):
    """A model holding the weights to start from."""
    if _pretrained_kind(weights):
        variant = variants.get_variant(model_config.name)
        kwargs = dict(include_top=False, weights=weights, input_shape=(image_size, image_size, 3))
        try:
            # Custom scaling (a width or depth given): local files only.
            if model_config.width is not None or model_config.depth is not None:
                return keras_effnet.build_efficientnet(
                    model_config.width or variant.width,
                    model_config.depth or variant.depth,
                    variant.resolution,
                    lite=variant.lite,
                    baseline=variant.baseline,
                    **kwargs,
                )
            return keras_effnet.get_model(variant.name, **kwargs)
        except ValueError as e:  # Unknown tag, wrong architecture, offline: one line each.
            raise ConfigError(str(e)) from None
    if not os.path.isfile(weights):
        raise ConfigError(f"Weights file not found. Received: weights={weights!r}")
    if weights.endswith(".keras"):
        try:
            return io.load_model(weights, "weights")
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return None


def load_initial_weights(model, weights, model_config, image_size):
    """Initializes `model` from `weights` ("imagenet", a .keras model or a weights file).

    A .keras model or the ImageNet backbone is copied layer by layer by name;
    layers whose weight shapes differ (the classifier of another dataset) keep
    their fresh initialization. Other files go through `model.load_weights`.

    Returns:
        (copied_layers, skipped_layer_names).
    """
    source = _source_model(weights, model_config, image_size)
    if source is None:
        try:
            model.load_weights(weights)
        except Exception as e:
            raise ConfigError(
                f"Could not load weights into {model.name}: {e}. Received: weights={weights!r}"
            ) from None
        return len(model.layers), []
    by_name = {layer.name: layer for layer in source.layers}
    copied, skipped = 0, []
    for layer in model.layers:
        if not layer.weights:
            continue
        other = by_name.get(layer.name)
        values = other.get_weights() if other is not None else None
        if values is None or [v.shape for v in values] != [tuple(w.shape) for w in layer.weights]:
            skipped.append(layer.name)
            continue
        layer.set_weights(values)
        copied += 1
    if not copied:
        raise ConfigError(
            f"No layer of {weights!r} matches {model.name} by name and shape. "
            f"Received: weights={weights!r}"
        )
    return copied, skipped


def recalibrate_batch_norm(model, batches):
    """Re-estimates every BatchNorm layer's moving statistics on `batches`.

    The moving mean/variance become the average of the per-batch statistics
    of the model's current weights ("precise BN"): right for EMA weights,
    whose statistics the training-time moving averages never saw, and for
    short runs whose averages still lag (momentum 0.99 remembers ~100 steps).

    Args:
        model: a Keras model (not under a distribution strategy).
        batches: iterable of image batches (or (images, labels) pairs).

    Returns:
        The number of batches used (0 leaves the model unchanged).
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    saved = [layer.momentum for layer in layers]
    sums, count = None, 0
    try:
        for layer in layers:  # Momentum 0: the moving statistics become the batch's.
            layer.momentum = 0.0
        step = _training_forward(model)
        for batch in batches:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            step(images)
            values = [
                (
                    keras.ops.convert_to_numpy(layer.moving_mean),
                    keras.ops.convert_to_numpy(layer.moving_variance),
                )
                for layer in layers
            ]
            sums = (
                values
                if sums is None
                else [(m0 + m1, v0 + v1) for (m0, v0), (m1, v1) in zip(sums, values)]
            )
            count += 1
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    if count:
        for layer, (mean, var) in zip(layers, sums):
            layer.moving_mean.assign(mean / count)
            layer.moving_variance.assign(var / count)
    return count


def _training_forward(model):
    """A traced training-mode forward pass, kept on the model (traced once per run).

    BatchNorm reads its momentum when traced, so the function is only ever
    called with every momentum at 0 (see `recalibrate_batch_norm`).
    """
    step = getattr(model, "_keras_effnet_bn_forward", None)
    if step is None:
        step = tf.function(lambda x: model(x, training=True), reduce_retracing=True)
        model._keras_effnet_bn_forward = step
    return step


def available_memory_bytes():
    """Memory the OS can give this process now (Linux MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(model, batch_size, *, available=None):
    """Refuses an input size whose activations alone cannot fit in host memory.

    Without it, `--image_size=5000` aborted the process with `std::bad_alloc`
    (rc 134, no message). The estimate (`profile.activation_bytes`: every
    layer's output, float32) is a lower bound of a training step's memory, so
    a refusal is certain to be right; on a GPU the device's own allocator
    reports instead, and nothing is checked here.

    Raises:
        ConfigError: naming --image_size and --batch_size, with both figures.
    """
    from keras_effnet.core.profile import activation_bytes  # pylint: disable=import-outside-toplevel

    if tf.config.list_physical_devices("GPU"):
        return
    available = available_memory_bytes() if available is None else available
    if not available:
        return
    per_image = activation_bytes(model)
    needed = per_image * batch_size
    if needed > available:
        size = model.input_shape[1]
        raise ConfigError(
            f"--image_size={size} with --batch_size={batch_size} cannot fit in memory: the "
            f"activations alone need at least {needed / 2**30:.1f} GiB "
            f"({per_image / 2**20:.0f} MiB per image), {available / 2**30:.1f} GiB is available. "
            f"Use a smaller --image_size or --batch_size."
        )
