"""The four sections of an experiment configuration, validated on construction.

`DataConfig`, `ModelConfig`, `OptimizerConfig` and `RunConfig` each check
their own fields (a bad value raises `ConfigError` naming the field);
`config.ExperimentConfig` holds one of each, and `config` also reads flags and
compares runs.

Every field carries its command-line flag in its metadata (`config_flags.option`:
help, `--help` section, the meaning of auto): `keras-effnet train`'s flags are
generated from these classes. "auto" is None (the recipe or the dataset
decides, `loop.resolve`); the enum fields recipe, optimizer, lr_schedule,
augment, progressive, strategy and eval_split keep "auto" as one of their
named choices.
"""

import dataclasses
import math

from keras_effnet.augment_spec import parse_augment
from keras_effnet.config_flags import option
from keras_effnet.errors import ConfigError
from keras_effnet.variants import get_variant

STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device", "cpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
SCHEDULES = ("exponential", "cosine", "constant")
OPTIMIZERS = ("adamw", "rmsprop", "sgd")
RECIPES = ("auto", "scratch", "finetune", "paper")
EVAL_SPLITS = ("auto", "train", "validation", "test")


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
        image_size: square input side; None = auto (the variant's native
            resolution, or the weights' for timm weights).
        batch_size: batch size per replica (global = this x replicas).
        augment: "auto", "none" or a comma list of crop, flip, randaugment,
            mixup. "auto" = "none" for digits (they fill their 8x8 frame: a
            crop cuts strokes, a flip makes other digits) and "crop,flip"
            otherwise (wrong for digits or text in a folder: pass "crop").
        crop_min_area: smallest area fraction of the random crop; None = auto
            (0.5: gentle enough for objects that fill the frame).
        randaugment_magnitude: RandAugment `factor` in (0, 1].
        mixup_alpha: MixUp Beta(alpha, alpha) parameter.
        cache: cache the (encoded) examples in memory after the first epoch.
        progressive: "auto", "on" or "off": progressive learning (EfficientNetV2,
            Algorithm 1), image size and regularization (dropout,
            RandAugment, MixUp) growing over `progressive_stages` stages to
            the targets above; see `training.progressive`. "auto" = on from
            64 px, 2 epochs per stage and 2,000 steps.
        progressive_stages: number of stages M; None = auto (4).
        progressive_start_size: the first stage's image size; None = auto
            (half the target, a multiple of 8, at least 32).
    """

    dataset: str = option(
        "digits",
        '"digits" (offline), an image folder (<root>/<class>/*.jpg) or a TFDS name.',
        section="data",
    )
    data_dir: str | None = option(None, "TFDS data directory.", section="data")
    image_size: int | None = option(
        None,
        "Input side.",
        section="data",
        auto="the variant's native resolution (timm weights: theirs)",
        legacy_auto=(0,),
    )
    batch_size: int = option(64, "Batch size per replica (global = x replicas).", section="data")
    augment: str = option(
        "auto",
        '"auto", "none" or a comma list of crop,flip,randaugment,mixup. Use "crop" for digits or '
        "text (a flip changes the class).",
        section="augmentation",
        auto="none for digits and for runs under 2,000 steps, else crop,flip",
    )
    crop_min_area: float | None = option(
        None,
        "Smallest area fraction of the random crop.",
        section="augmentation",
        auto="0.5 (paper: 0.08)",
        legacy_auto=(-1,),
    )
    randaugment_magnitude: float = option(
        0.5, "RandAugment factor in (0, 1].", section="augmentation"
    )
    mixup_alpha: float = option(0.2, "MixUp Beta(alpha, alpha).", section="augmentation")
    cache: bool = option(
        True, "Cache encoded examples in memory (--nocache for large datasets).", section="data"
    )
    progressive: str = option(
        "auto",
        "Progressive learning (EfficientNetV2): image size, dropout, RandAugment and MixUp grow "
        "over --progressive_stages stages to their targets.",
        section="augmentation",
        auto="on from 64 px, 2 epochs per stage and 2,000 steps",
        choices=("auto", "on", "off"),
    )
    progressive_stages: int | None = option(
        None, "Stages of --progressive.", section="augmentation", auto="4", legacy_auto=(0,)
    )
    progressive_start_size: int | None = option(
        None,
        "First stage's image size.",
        section="augmentation",
        auto="half the target, multiple of 8, >= 32",
        legacy_auto=(0,),
    )

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            fail("dataset", self.dataset, "a non-empty string")
        if self.image_size is not None and (not _is_int(self.image_size) or self.image_size < 32):
            fail(
                "image_size", self.image_size, "auto (None: the native resolution) or an int >= 32"
            )
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            fail("batch_size", self.batch_size, "a positive int (per replica)")
        parse_augment(self.augment)
        if self.crop_min_area is not None:
            _check_range("crop_min_area", self.crop_min_area, 0.0, 1.0, low_open=True)
        _check_range("randaugment_magnitude", self.randaugment_magnitude, 0.0, 1.0, low_open=True)
        _check_range("mixup_alpha", self.mixup_alpha, 0.0, math.inf, low_open=True, high_open=True)
        if self.progressive not in ("auto", "on", "off"):
            fail("progressive", self.progressive, '"auto", "on" or "off"')
        if self.progressive_stages is not None and (
            not _is_int(self.progressive_stages) or self.progressive_stages < 1
        ):
            fail("progressive_stages", self.progressive_stages, "auto (None) or a positive int")
        if self.progressive_start_size is not None and (
            not _is_int(self.progressive_start_size) or self.progressive_start_size < 32
        ):
            fail(
                "progressive_start_size",
                self.progressive_start_size,
                "auto (None) or an int >= 32",
            )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which network and how its layers are set up for training.

    Attributes:
        name: variant, "b0".."b7" or "lite0".."lite4".
        width: width coefficient override (None = the variant's).
        depth: depth coefficient override (None = the variant's).
        weights: None, "imagenet", "timm:<architecture>.<tag>", or a
            .safetensors (timm format) / .keras / weights file to start from;
            layers are matched by name, mismatching shapes (the classifier of
            another dataset) are left at their initial values.
        dropout_rate: dropout before the classifier (None = the variant's).
        drop_connect_rate: stochastic-depth rate of the last block; None = auto
            (scaled with the run's length, see recipe.auto_drop_connect).
        sync_bn: synchronize BatchNorm statistics across replicas.
        freeze_bn: keep every BatchNorm layer in inference mode; None = auto
            (on with `weights`, off without).
        head_epochs: epochs of head-only training (backbone frozen) before
            the whole network trains; None = auto (with `weights`: a fifth of
            the run, 1 to 5 epochs; without: 0).
    """

    name: str = option("lite0", "Variant: b0..b7, lite0..lite4.", section="model", flag="model")
    width: float | None = option(
        None,
        "Width coefficient override.",
        section="model",
        auto="the variant's",
        legacy_auto=(0,),
    )
    depth: float | None = option(
        None,
        "Depth coefficient override.",
        section="model",
        auto="the variant's",
        legacy_auto=(0,),
    )
    weights: str | None = option(
        None,
        'Start from: "imagenet" (every variant), "timm:<architecture>.<tag>", or a timm-format '
        ".safetensors / .keras / weights file to fine-tune.",
        section="model",
    )
    dropout_rate: float | None = option(
        None,
        "Dropout before the classifier.",
        section="model",
        auto="the variant's",
        legacy_auto=(-1,),
    )
    drop_connect_rate: float | None = option(
        None,
        "Stochastic depth rate of the last block.",
        section="model",
        auto="0.2 x run steps / 10k, max 0.2",
        legacy_auto=(-1,),
    )
    sync_bn: bool = option(
        False, "Synchronize BatchNorm statistics across replicas.", section="model"
    )
    freeze_bn: bool | None = option(
        None,
        "Keep BatchNorm layers frozen (inference mode).",
        section="model",
        auto="on with --weights",
    )
    head_epochs: int | None = option(
        None,
        "Head-only epochs (backbone frozen) before the whole network trains.",
        section="model",
        auto="with --weights a fifth of the run, 1-5 epochs; else 0",
        legacy_auto=(-1,),
    )

    def __post_init__(self):
        try:
            get_variant(self.name)
        except ValueError as e:
            raise ConfigError(f"Bad --model: {e}") from None
        for name in ("width", "depth"):
            if getattr(self, name) is not None:
                _check_range(name, getattr(self, name), 0.0, 10.0, low_open=True)
        if self.dropout_rate is not None:
            _check_range("dropout_rate", self.dropout_rate, 0.0, 1.0, high_open=True)
        if self.drop_connect_rate is not None:
            _check_range("drop_connect_rate", self.drop_connect_rate, 0.0, 1.0, high_open=True)
        if self.weights is not None and (not isinstance(self.weights, str) or not self.weights):
            fail("weights", self.weights, 'None, "imagenet" or a file path')
        if self.freeze_bn not in (None, True, False):
            fail("freeze_bn", self.freeze_bn, "auto (None), True or False")
        if self.head_epochs is not None and (not _is_int(self.head_epochs) or self.head_epochs < 0):
            fail("head_epochs", self.head_epochs, "auto (None) or an int >= 0")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The training recipe. Every "auto" / None field is filled by `recipe`.

    Attributes:
        recipe: "auto" ("scratch", or "finetune" when starting from weights),
            "scratch", "finetune" or "paper" (tensorflow/tpu's 350-epoch
            ImageNet recipe). See `recipe.RECIPES`.
        name: "adamw", "rmsprop" (paper) or "sgd" (Nesterov momentum).
        base_lr: learning rate per `lr_batch_size` images; the peak rate is
            base_lr * global_batch / lr_batch_size.
        lr_batch_size: the batch size `base_lr` refers to (None = auto).
        schedule: "exponential" (decay_rate every decay_epochs, staircase),
            "cosine" (to 0 at the last step) or "constant".
        warmup_epochs: linear warmup length; None = auto, min(5, epochs / 10).
        decay_rate, decay_epochs: the exponential schedule.
        rho, momentum, epsilon: RMSProp (momentum also SGD's).
        label_smoothing: categorical label smoothing.
        weight_decay: AdamW's decoupled decay (lr-scaled, not BatchNorm or
            biases); RMSProp/SGD: L2 penalty `wd * 0.5 * |w|^2` on kernels.
        ema_momentum: weight EMA momentum; None = auto (window sized to the
            run, see recipe.auto_ema_momentum), 0 = no EMA.
        bn_images: training images used to re-estimate BatchNorm statistics
            of the evaluated weights before every validation and save; None =
            auto (512), 0 = off (keep the moving averages).
    """

    recipe: str = option(
        "auto",
        "paper = tensorflow/tpu's 350-epoch ImageNet recipe. Every auto flag of this section "
        "comes from the recipe.",
        section="recipe",
        auto="scratch, or finetune with --weights",
        choices=RECIPES,
    )
    name: str = option(
        "auto",
        "Optimizer.",
        section="recipe",
        auto="the recipe's (scratch, finetune: adamw; paper: rmsprop)",
        flag="optimizer",
        choices=("auto",) + OPTIMIZERS,
    )
    base_lr: float | None = option(
        None,
        "Learning rate per --lr_batch_size images.",
        section="recipe",
        auto="the recipe's (scratch 2e-3 per 64)",
        legacy_auto=(-1,),
    )
    lr_batch_size: int | None = option(
        None,
        "Batch size that --base_lr refers to.",
        section="recipe",
        auto="the recipe's",
        legacy_auto=(0,),
    )
    schedule: str = option(
        "auto",
        "Learning-rate schedule.",
        section="recipe",
        auto="the recipe's (scratch, finetune: cosine; paper: exponential)",
        flag="lr_schedule",
        choices=("auto",) + SCHEDULES,
    )
    warmup_epochs: float | None = option(
        None,
        "Linear warmup epochs.",
        section="recipe",
        auto="min(5, epochs/10)",
        legacy_auto=(-1,),
    )
    decay_rate: float = option(0.97, "Exponential decay factor.", section="recipe")
    decay_epochs: float = option(2.4, "Exponential decay period in epochs.", section="recipe")
    rho: float = option(0.9, "RMSProp rho.", section="recipe")
    momentum: float = option(0.9, "RMSProp / SGD momentum.", section="recipe")
    epsilon: float = option(1e-3, "RMSProp epsilon.", section="recipe")
    label_smoothing: float | None = option(
        None, "Label smoothing.", section="recipe", auto="the recipe's (0.1)", legacy_auto=(-1,)
    )
    weight_decay: float | None = option(
        None,
        "AdamW decoupled decay or RMSProp/SGD L2 on kernels.",
        section="recipe",
        auto="the recipe's (scratch 0.05, paper 1e-5)",
        legacy_auto=(-1,),
    )
    ema_momentum: float | None = option(
        None,
        "Weight EMA momentum; 0 = off.",
        section="recipe",
        auto="window 5% of the run (paper 10%)",
        legacy_auto=(-1,),
    )
    bn_images: int | None = option(
        None,
        "Training images to re-estimate BatchNorm statistics on before each validation; 0 = off.",
        section="recipe",
        auto="512 (0 with frozen BatchNorm)",
        legacy_auto=(-1,),
    )

    def __post_init__(self):
        if self.recipe not in RECIPES:
            fail("recipe", self.recipe, f"one of {RECIPES}")
        if self.name not in ("auto",) + OPTIMIZERS:
            fail("optimizer", self.name, f'"auto" or one of {OPTIMIZERS}')
        if self.schedule not in ("auto",) + SCHEDULES:
            fail("lr_schedule", self.schedule, f'"auto" or one of {SCHEDULES}')
        if self.base_lr is not None:
            _check_range("base_lr", self.base_lr, 0.0, math.inf, low_open=True, high_open=True)
        if self.lr_batch_size is not None and (
            not _is_int(self.lr_batch_size) or self.lr_batch_size < 1
        ):
            fail("lr_batch_size", self.lr_batch_size, "auto (None) or a positive int")
        if self.warmup_epochs is not None:
            _check_range("warmup_epochs", self.warmup_epochs, 0.0, math.inf, high_open=True)
        _check_range("decay_rate", self.decay_rate, 0.0, 1.0, low_open=True)
        _check_range(
            "decay_epochs", self.decay_epochs, 0.0, math.inf, low_open=True, high_open=True
        )
        _check_range("rho", self.rho, 0.0, 1.0, high_open=True)
        _check_range("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _check_range("epsilon", self.epsilon, 0.0, 1.0, low_open=True)
        if self.label_smoothing is not None:
            _check_range("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        if self.weight_decay is not None:
            _check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        if self.ema_momentum is not None:
            _check_range("ema_momentum", self.ema_momentum, 0.0, 1.0, high_open=True)
        if self.bn_images is not None and (not _is_int(self.bn_images) or self.bn_images < 0):
            fail("bn_images", self.bn_images, "auto (None), 0 (off) or a positive int")


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

    model_dir: str = option("", "Run directory (re-run to resume).", section="run", required=True)
    epochs: int = option(10, "Epochs.", section="run")
    steps_per_epoch: int = option(0, "0 = one pass over the training split.", section="run")
    strategy: str = option(
        "auto",
        "tf.distribute strategy.",
        section="run",
        auto="mirrored over 2+ GPUs, else one device",
        choices=STRATEGIES,
    )
    cpu_devices: int = option(
        0, "Split the CPU into N logical devices (--strategy=mirrored without GPUs).", section="run"
    )
    precision: str = option("float32", "Keras dtype policy.", section="run", choices=PRECISIONS)
    jit_compile: bool = option(False, "XLA-compile the train step.", section="run")
    seed: int = option(
        0,
        "Seed of initialization, shuffling and augmentation; the run uses exactly this.",
        section="run",
    )
    verbose: int = option(
        1,
        "0 silent, 1 progress bar, 2 one line per epoch plus TensorFlow's INFO logs.",
        section="run",
    )
    eval_split: str = option(
        "auto",
        "Split evaluated with best.keras at the end.",
        section="run",
        auto="test (validation if none)",
        choices=EVAL_SPLITS,
    )

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
        if self.eval_split not in EVAL_SPLITS:
            fail("eval_split", self.eval_split, '"auto", "train", "validation" or "test"')
