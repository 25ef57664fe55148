"""Progressive learning with adaptive regularization (EfficientNetV2, arXiv:2104.00298).

Algorithm 1 of the paper: training is split into M stages; stage i trains at
image size S_i and regularization Phi_i (dropout rate, RandAugment magnitude,
MixUp alpha), both linearly interpolated from small starting values (S_0,
Phi_0) to the run's target values (S_e, Phi_e):

    S_i = S_0 + (S_e - S_0) * i / (M - 1),   Phi_i likewise.

Small images early cost fewer FLOPs per step and, the paper argues, want
weaker regularization; the last stage trains at the target size with the
target regularization, so the saved model, validation and evaluation are all
at the target size.

Here the stages are whole epochs (epochs split as evenly as possible), so a
run's stage is a pure function of its epoch counter: a killed run resumes in
the stage the epoch belongs to. The training model is built with a dynamic
input (EfficientNet is fully convolutional up to global pooling), so the same
variables train at every size; the inference model (validation, BatchNorm
re-estimation, best/last.keras) is built at the target size.

The training step is traced once for the whole run: every stage's stream has
the same element spec (spatial sides unknown) and the classifier dropout is a
`StageDropout` whose rate is a variable. Keras' Dropout reads its rate when
the step is traced, and each re-trace of B0's step cost ~40 s on 2 busy CPU
cores, more than a short run's small first stages save.
"""

import dataclasses

import keras
import tensorflow as tf

from keras_effnet import keras_internals
from keras_effnet.errors import ConfigError

MODES = ("auto", "on", "off")
AUTO_STAGES = 4  # The paper's M (4 stages on ImageNet, Section 4.2).
START_SIZE_FRACTION = 0.5  # Paper: 128 px for targets of 300-380 px (0.34-0.43); 0.5 is gentler.
SIZE_MULTIPLE = 8  # Intermediate sizes are multiples of 8 (the last stage is the target).
MIN_SIZE = 32  # Five stride-2 stages: 32 px is 1x1 before the head.
MIN_EPOCHS_PER_STAGE = 2  # One epoch per stage leaves each size one pass: auto says off.
AUTO_MIN_STEPS = 2000  # Shorter runs: auto off (measured: docs/training.md "Progressive learning").
# Phi_0, from the paper's Table 6 (EfficientNetV2-S/M/L): dropout starts at 0.1,
# RandAugment at 5 of a 15-25 target (a third of V2-S's), MixUp at 0.
START_DROPOUT = 0.1
START_RANDAUGMENT_FRACTION = 1 / 3
START_MIXUP_ALPHA = 0.0


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a run: epochs [first_epoch, end_epoch) (0-based) and their settings."""

    index: int
    first_epoch: int
    end_epoch: int
    image_size: int
    dropout_rate: float
    randaugment_magnitude: float
    mixup_alpha: float

    def to_dict(self):
        return dataclasses.asdict(self)


def auto_start_size(image_size):
    """S_0: half the target, rounded down to a multiple of 8, at least 32 px."""
    return max(MIN_SIZE, int(image_size * START_SIZE_FRACTION) // SIZE_MULTIPLE * SIZE_MULTIPLE)


def auto_mode(
    image_size, epochs, stages=AUTO_STAGES, total_steps=AUTO_MIN_STEPS, min_steps=AUTO_MIN_STEPS
):
    """("on" or "off", why) for `progressive="auto"`.

    Off when it cannot help: a target under 64 px (the first stage would be at
    or under the 32 px minimum, so nothing gets smaller), fewer than two
    epochs per stage (each size would be seen once), or a run under
    `min_steps` steps: on 252-step runs (12 epochs of 1,350 images at 64 px,
    B0 and V2-B0, docs/training.md "Progressive learning") the time to a common
    validation accuracy was within noise of the plain run, faster for one
    model and slower for the other; the paper's savings come from long runs.
    """
    if auto_start_size(image_size) >= image_size or image_size < 2 * MIN_SIZE:
        return "off", f"{image_size} px is too small to start smaller (needs >= {2 * MIN_SIZE})"
    if epochs < MIN_EPOCHS_PER_STAGE * stages:
        return "off", (
            f"{epochs} epochs is under {MIN_EPOCHS_PER_STAGE} per stage x {stages} stages"
        )
    if total_steps < min_steps:
        return "off", f"{total_steps} steps is a short run (under {min_steps})"
    return "on", f"{image_size} px, {epochs} epochs, {total_steps} steps"


def _interpolate(start, end, i, count):
    return start if count == 1 else start + (end - start) * i / (count - 1)


def _round_size(size):
    return max(MIN_SIZE, int(round(size / SIZE_MULTIPLE)) * SIZE_MULTIPLE)


def schedule(
    image_size, epochs, num_stages, start_size, dropout_rate, randaugment_magnitude, mixup_alpha
):
    """The stages of a run (Algorithm 1); one stage at the target values when `num_stages` is 1.

    Args:
        image_size: the target (final) size S_e.
        epochs: the run's epochs, split into `num_stages` near-equal parts.
        num_stages: M.
        start_size: S_0 (ignored with one stage).
        dropout_rate, randaugment_magnitude, mixup_alpha: the targets Phi_e;
            each starts at its Phi_0 (`START_*`, never above the target).

    Returns:
        A list of `Stage`.

    Raises:
        ConfigError: a stage count or start size that cannot make a schedule.
    """
    if not isinstance(num_stages, int) or isinstance(num_stages, bool) or num_stages < 1:
        raise ConfigError(
            f"`progressive_stages` must be a positive int. "
            f"Received: progressive_stages={num_stages!r}"
        )
    if num_stages > epochs:
        raise ConfigError(
            f"`progressive_stages` must be at most the number of epochs ({epochs}): a stage is "
            f"whole epochs. Received: progressive_stages={num_stages}"
        )
    if num_stages > 1 and not MIN_SIZE <= start_size < image_size:
        raise ConfigError(
            f"`progressive_start_size` must be in [{MIN_SIZE}, image_size={image_size}). "
            f"Received: progressive_start_size={start_size}"
        )
    starts = (
        min(START_DROPOUT, dropout_rate),
        randaugment_magnitude * START_RANDAUGMENT_FRACTION,
        min(START_MIXUP_ALPHA, mixup_alpha),
    )
    targets = (dropout_rate, randaugment_magnitude, mixup_alpha)
    stages = []
    for i in range(num_stages):
        last = i == num_stages - 1
        size = (
            image_size if last else _round_size(_interpolate(start_size, image_size, i, num_stages))
        )
        values = (
            targets
            if last
            else [round(_interpolate(a, b, i, num_stages), 6) for a, b in zip(starts, targets)]
        )
        stages.append(
            Stage(
                i,
                epochs * i // num_stages,
                epochs * (i + 1) // num_stages,
                min(size, image_size),
                *values,
            )
        )
    return stages


def resolve_stages(data_config, epochs, image_size, dropout_rate, total_steps):
    """(stages, why) of a `DataConfig`'s progressive fields; one stage at the targets when off.

    `image_size`, `dropout_rate` and `total_steps` are the run's resolved values.
    """
    d = data_config
    mode, why = d.progressive, f"--progressive={d.progressive}"
    count = AUTO_STAGES if d.progressive_stages is None else d.progressive_stages
    if mode == "auto":
        mode, why = auto_mode(image_size, epochs, count, total_steps)
        why = f"auto: {why}"
    auto_start = d.progressive_start_size is None
    start = auto_start_size(image_size) if auto_start else d.progressive_start_size
    if mode == "on" and auto_start and start >= image_size:
        raise ConfigError(
            f"Progressive learning needs an image size of at least {2 * MIN_SIZE} px to start "
            f"smaller (image_size={image_size}). Received: progressive='on'"
        )
    if mode == "off":
        count, start = 1, image_size
    return schedule(
        image_size, epochs, count, start, dropout_rate, d.randaugment_magnitude, d.mixup_alpha
    ), why


def stage_of_epoch(stages, epoch):
    """The stage that trains `epoch` (0-based); the last one for epochs past the end."""
    return next((s for s in stages if s.first_epoch <= epoch < s.end_epoch), stages[-1])


def describe(stages):
    """One line for the run's first lines: sizes and regularization per stage."""
    if len(stages) == 1:
        return "off"
    sizes = " -> ".join(f"{s.image_size}" for s in stages)
    spans = ", ".join(f"{s.end_epoch - s.first_epoch}" for s in stages)
    first, last = stages[0], stages[-1]
    return (
        f"{len(stages)} stages, {sizes} px (epochs per stage {spans}), dropout "
        f"{first.dropout_rate:g} -> {last.dropout_rate:g}, RandAugment "
        f"{first.randaugment_magnitude:.3g} -> {last.randaugment_magnitude:g}, MixUp alpha "
        f"{first.mixup_alpha:g} -> {last.mixup_alpha:g} (where on)"
    )


@keras.saving.register_keras_serializable(package="keras_effnet")
class StageDropout(keras.layers.Layer):
    """Dropout whose rate is a (non-trainable, unsaved) variable: set per stage, no re-trace.

    Same masks as inverted dropout: each unit kept with probability 1 - rate
    and scaled by 1 / (1 - rate) in training; identity in inference.

    Args:
        rate: the initial rate in [0, 1).
        seed: seed of the mask generator.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.initial_rate = float(rate)
        self.seed = seed
        self.rate = tf.Variable(
            self.initial_rate, trainable=False, dtype=tf.float32, name="stage_dropout_rate"
        )
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        rate = keras.ops.cast(self.rate, inputs.dtype)
        noise = keras.random.uniform(keras.ops.shape(inputs), seed=self.seed_generator)
        return keras.ops.where(noise >= rate, inputs / (1 - rate), keras.ops.zeros_like(inputs))

    def get_config(self):
        return {**super().get_config(), "rate": self.initial_rate, "seed": self.seed}


def with_stage_dropout(model):
    """`model` with its classifier dropout (`top_dropout`) replaced by a `StageDropout`.

    The returned functional model shares every other layer (and so every
    variable, in the same order) with `model`; a model without `top_dropout`
    (dropout 0) is returned unchanged.
    """
    names = [layer.name for layer in model.layers]
    if "top_dropout" not in names or "predictions" not in names:
        return model
    dropout = model.get_layer("top_dropout")
    stage = StageDropout(dropout.rate, name="top_dropout")
    outputs = model.get_layer("predictions")(stage(dropout.input))
    return keras.Model(model.inputs, outputs, name=model.name)


def set_dropout(model, rate):
    """Sets the rate of every `StageDropout` of `model`; returns how many there are."""
    layers = [
        layer for layer in keras_internals.flatten_layers(model) if isinstance(layer, StageDropout)
    ]
    for layer in layers:
        layer.rate.assign(float(rate))
    return len(layers)


def relax_image_shape(dataset):
    """The same batches with the image sides unknown to the element spec.

    Every stage's stream then has one element spec, so Keras' traced step
    (keyed by the input iterator's spec) is reused across stages.
    """

    def relax(images, labels):
        shape = [images.shape[0], None, None, images.shape[-1]]
        return tf.raw_ops.PlaceholderWithDefault(input=images, shape=shape), labels

    return dataset.map(relax)


class StageLog(keras.callbacks.Callback):
    """Adds the current stage's number and image size to every epoch's logs (history.csv)."""

    def __init__(self):
        super().__init__()
        self.stage = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.stage is not None:
            logs.update(stage=self.stage.index, image_size=self.stage.image_size)
