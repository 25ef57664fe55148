"""The four sections of an experiment configuration, validated on construction.

`DataConfig`, `ModelConfig`, `OptimizerConfig` and `RunConfig` each check
their own fields (a bad value raises `ConfigError` naming the field);
`config.ExperimentConfig` holds one of each, and `config` also reads flags and
compares runs.
"""

import dataclasses
import math

from keras_effnet import variants
from keras_effnet.errors import ConfigError

STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device", "cpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
SCHEDULES = ("exponential", "cosine", "constant")
OPTIMIZERS = ("adamw", "rmsprop", "sgd")
RECIPES = ("auto", "scratch", "finetune", "paper")
AUTO = -1  # Numeric "auto": the recipe decides (see training/recipe.py).


def fail(name, value, expected):
    """Raises the `ConfigError` of a field: "`name` must be expected. Received: ..."."""
    raise ConfigError(f"`{name}` must be {expected}. Received: {name}={value!r}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(name, value, low, high, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        fail(name, value, "a number")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        fail(name, value, f"in {left}{low}, {high}{right}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Input pipeline.

    Attributes:
        dataset: "digits" (offline default), a directory of class folders, or
            a TFDS name.
        data_dir: TFDS data directory (None = TFDS default).
        image_size: square input side; 0 = the variant's native resolution.
        batch_size: batch size per replica (global = this x replicas).
        augment: "auto", "none" or a comma list of crop, flip, randaugment,
            mixup. "auto" = "none" for digits (they fill their 8x8 frame: a
            crop cuts strokes, a flip makes other digits) and "crop,flip"
            otherwise (wrong for digits or text in a folder: pass "crop").
        crop_min_area: smallest area fraction of the random crop; -1 = auto
            (0.5: gentle enough for objects that fill the frame).
        randaugment_magnitude: RandAugment `factor` in (0, 1].
        mixup_alpha: MixUp Beta(alpha, alpha) parameter.
        cache: cache the (encoded) examples in memory after the first epoch.
        progressive: "auto", "on" or "off": progressive learning (EfficientNetV2,
            Algorithm 1), image size and regularization (dropout,
            RandAugment, MixUp) growing over `progressive_stages` stages to
            the targets above; see `training.progressive`. "auto" = on from
            64 px, 2 epochs per stage and 2,000 steps.
        progressive_stages: number of stages M; 0 = auto (4).
        progressive_start_size: the first stage's image size; 0 = auto (half
            the target, a multiple of 8, at least 32).
    """

    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int = 0
    batch_size: int = 64
    augment: str = "auto"
    crop_min_area: float = AUTO
    randaugment_magnitude: float = 0.5
    mixup_alpha: float = 0.2
    cache: bool = True
    progressive: str = "auto"
    progressive_stages: int = 0
    progressive_start_size: int = 0

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            fail("dataset", self.dataset, "a non-empty string")
        if not isinstance(self.image_size, int) or self.image_size < 0 or 0 < self.image_size < 32:
            fail("image_size", self.image_size, "0 (native resolution) or an int >= 32")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            fail("batch_size", self.batch_size, "a positive int (per replica)")
        # Imported here: keras_effnet.data imports TensorFlow, and the commands read
        # STRATEGIES before their flags are parsed (issue 21).
        from keras_effnet.data import parse_augment

        parse_augment(self.augment)
        if self.crop_min_area != AUTO:
            _check_range("crop_min_area", self.crop_min_area, 0.0, 1.0, low_open=True)
        _check_range("randaugment_magnitude", self.randaugment_magnitude, 0.0, 1.0, low_open=True)
        _check_range("mixup_alpha", self.mixup_alpha, 0.0, math.inf, low_open=True, high_open=True)
        if self.progressive not in ("auto", "on", "off"):
            fail("progressive", self.progressive, '"auto", "on" or "off"')
        if not _is_int(self.progressive_stages) or self.progressive_stages < 0:
            fail("progressive_stages", self.progressive_stages, "0 (auto) or a positive int")
        if (
            not _is_int(self.progressive_start_size)
            or 0 < self.progressive_start_size < 32
            or (self.progressive_start_size < 0)
        ):
            fail("progressive_start_size", self.progressive_start_size, "0 (auto) or an int >= 32")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which network and how its layers are set up for training.

    Attributes:
        name: variant, "b0".."b7" or "lite0".."lite4".
        width: width coefficient override (0 = the variant's).
        depth: depth coefficient override (0 = the variant's).
        weights: None, "imagenet", "timm:<architecture>.<tag>", or a
            .safetensors (timm format) / .keras / weights file to start from;
            layers are matched by name, mismatching shapes (the classifier of
            another dataset) are left at their initial values.
        dropout_rate: dropout before the classifier (-1 = the variant's).
        drop_connect_rate: stochastic-depth rate of the last block; -1 = auto
            (scaled with the run's length, see recipe.auto_drop_connect).
        sync_bn: synchronize BatchNorm statistics across replicas.
        freeze_bn: keep every BatchNorm layer in inference mode; None = auto
            (on with `weights`, off without).
        head_epochs: epochs of head-only training (backbone frozen) before
            the whole network trains; -1 = auto (with `weights`: a fifth of
            the run, 1 to 5 epochs; without: 0).
    """

    name: str = "lite0"
    width: float = 0.0
    depth: float = 0.0
    weights: str | None = None
    dropout_rate: float = -1.0
    drop_connect_rate: float = AUTO
    sync_bn: bool = False
    freeze_bn: bool | None = None
    head_epochs: int = AUTO

    def __post_init__(self):
        try:
            variants.get_variant(self.name)
        except ValueError as e:
            raise ConfigError(f"Bad --model: {e}") from None
        _check_range("width", self.width, 0.0, 10.0)
        _check_range("depth", self.depth, 0.0, 10.0)
        if self.dropout_rate != -1.0:
            _check_range("dropout_rate", self.dropout_rate, 0.0, 1.0, high_open=True)
        if self.drop_connect_rate != AUTO:
            _check_range("drop_connect_rate", self.drop_connect_rate, 0.0, 1.0, high_open=True)
        if self.weights is not None and (not isinstance(self.weights, str) or not self.weights):
            fail("weights", self.weights, 'None, "imagenet" or a file path')
        if self.freeze_bn not in (None, True, False):
            fail("freeze_bn", self.freeze_bn, "None (auto), True or False")
        if self.head_epochs != AUTO and (not _is_int(self.head_epochs) or self.head_epochs < 0):
            fail("head_epochs", self.head_epochs, "-1 (auto) or an int >= 0")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The training recipe. Every "auto" / -1 field is filled by `recipe`.

    Attributes:
        recipe: "auto" ("scratch", or "finetune" when starting from weights),
            "scratch", "finetune" or "paper" (tensorflow/tpu's 350-epoch
            ImageNet recipe). See `recipe.RECIPES`.
        name: "adamw", "rmsprop" (paper) or "sgd" (Nesterov momentum).
        base_lr: learning rate per `lr_batch_size` images; the peak rate is
            base_lr * global_batch / lr_batch_size.
        lr_batch_size: the batch size `base_lr` refers to (0 = auto).
        schedule: "exponential" (decay_rate every decay_epochs, staircase),
            "cosine" (to 0 at the last step) or "constant".
        warmup_epochs: linear warmup length; -1 = auto, min(5, epochs / 10).
        decay_rate, decay_epochs: the exponential schedule.
        rho, momentum, epsilon: RMSProp (momentum also SGD's).
        label_smoothing: categorical label smoothing.
        weight_decay: AdamW's decoupled decay (lr-scaled, not BatchNorm or
            biases); RMSProp/SGD: L2 penalty `wd * 0.5 * |w|^2` on kernels.
        ema_momentum: weight EMA momentum; -1 = auto (window sized to the
            run, see recipe.auto_ema_momentum), 0 = no EMA.
        bn_images: training images used to re-estimate BatchNorm statistics
            of the evaluated weights before every validation and save; -1 =
            auto (512), 0 = off (keep the moving averages).
    """

    recipe: str = "auto"
    name: str = "auto"
    base_lr: float = AUTO
    lr_batch_size: int = 0
    schedule: str = "auto"
    warmup_epochs: float = AUTO
    decay_rate: float = 0.97
    decay_epochs: float = 2.4
    rho: float = 0.9
    momentum: float = 0.9
    epsilon: float = 1e-3
    label_smoothing: float = AUTO
    weight_decay: float = AUTO
    ema_momentum: float = AUTO
    bn_images: int = AUTO

    def __post_init__(self):
        if self.recipe not in RECIPES:
            fail("recipe", self.recipe, f"one of {RECIPES}")
        if self.name not in ("auto",) + OPTIMIZERS:
            fail("optimizer", self.name, f'"auto" or one of {OPTIMIZERS}')
        if self.schedule not in ("auto",) + SCHEDULES:
            fail("lr_schedule", self.schedule, f'"auto" or one of {SCHEDULES}')
        if self.base_lr != AUTO:
            _check_range("base_lr", self.base_lr, 0.0, math.inf, low_open=True, high_open=True)
        if not isinstance(self.lr_batch_size, int) or self.lr_batch_size < 0:
            fail("lr_batch_size", self.lr_batch_size, "0 (auto) or a positive int")
        if self.warmup_epochs != AUTO:
            _check_range("warmup_epochs", self.warmup_epochs, 0.0, math.inf, high_open=True)
        _check_range("decay_rate", self.decay_rate, 0.0, 1.0, low_open=True)
        _check_range(
            "decay_epochs", self.decay_epochs, 0.0, math.inf, low_open=True, high_open=True
        )
        _check_range("rho", self.rho, 0.0, 1.0, high_open=True)
        _check_range("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _check_range("epsilon", self.epsilon, 0.0, 1.0, low_open=True)
        if self.label_smoothing != AUTO:
            _check_range("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        if self.weight_decay != AUTO:
            _check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        if self.ema_momentum != AUTO:
            _check_range("ema_momentum", self.ema_momentum, 0.0, 1.0, high_open=True)
        if (
            not isinstance(self.bn_images, int)
            or isinstance(self.bn_images, bool)
            or self.bn_images < AUTO
        ):
            fail("bn_images", self.bn_images, "-1 (auto), 0 (off) or a positive int")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where and how the run executes.

    Attributes:
        model_dir: output directory (config.json, best/last.keras, logs,
            backup); re-running with the same directory resumes.
        epochs: number of epochs.
        steps_per_epoch: 0 = one pass over the training split.
        strategy: "auto", "mirrored", "multi_worker", "one_device" or "cpu".
        cpu_devices: split the CPU into this many logical devices before
            TensorFlow starts (0 = leave alone); lets "mirrored" run N replicas
            on a CPU-only machine.
        precision: "float32", "mixed_float16" or "mixed_bfloat16".
        jit_compile: compile train/eval steps with XLA.
        seed: seed for Keras/TF random ops, shuffling and augmentation.
        verbose: Keras fit verbosity (0 silent, 1 progress bar, 2 one line
            per epoch).
        eval_split: split evaluated at the end with the best model; "auto" =
            test, or validation (said so) when the dataset has no test split.
    """

    model_dir: str = ""
    epochs: int = 10
    steps_per_epoch: int = 0
    strategy: str = "auto"
    cpu_devices: int = 0
    precision: str = "float32"
    jit_compile: bool = False
    seed: int = 0
    verbose: int = 1
    eval_split: str = "auto"

    def __post_init__(self):
        if not isinstance(self.model_dir, str):
            fail("model_dir", self.model_dir, "a directory path")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            fail("epochs", self.epochs, "a positive int")
        if not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 0:
            fail("steps_per_epoch", self.steps_per_epoch, "an int >= 0")
        if self.strategy not in STRATEGIES:
            fail("strategy", self.strategy, f"one of {STRATEGIES}")
        if not isinstance(self.cpu_devices, int) or self.cpu_devices < 0:
            fail("cpu_devices", self.cpu_devices, "an int >= 0")
        if self.precision not in PRECISIONS:
            fail("precision", self.precision, f"one of {PRECISIONS}")
        if not _is_int(self.seed) or self.seed < 0:
            fail("seed", self.seed, "an int >= 0")
        if self.verbose not in (0, 1, 2):
            fail("verbose", self.verbose, "0, 1 or 2")
        if self.eval_split not in ("auto", "train", "validation", "test"):
            fail("eval_split", self.eval_split, '"auto", "train", "validation" or "test"')
