"""Experiment configuration: frozen dataclasses, validated on construction.

One `ExperimentConfig` describes a run. `scripts/train.py` fills it from flags;
`train()` resolves every "auto" value against the dataset and the strategy
(`resolve`) and dumps the result to `model_dir/config.json`, so a run can be
read back (`ExperimentConfig.from_dict`) and compared when it resumes.
"""

import dataclasses
import json
import math

from keras_effnet import variants
from keras_effnet.data import AUGMENTATIONS, parse_augment  # noqa: F401  (re-exported)
from keras_effnet.errors import ConfigError  # noqa: F401  (the same class, kept importable here)

STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device", "cpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
SCHEDULES = ("exponential", "cosine", "constant")
OPTIMIZERS = ("adamw", "rmsprop", "sgd")
RECIPES = ("auto", "scratch", "finetune", "paper")
AUTO = -1  # Numeric "auto": the recipe decides (see training/recipe.py).
# Fields that may change between a run and its resumption (where and how fast
# it runs, not what it computes).
RUNTIME_FIELDS = (
    "run.strategy",
    "run.cpu_devices",
    "run.verbose",
    "run.jit_compile",
    "data.data_dir",
)


def _fail(name, value, expected):
    raise ConfigError(f"`{name}` must be {expected}. Received: {name}={value!r}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(name, value, low, high, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        _fail(name, value, "a number")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        _fail(name, value, f"in {left}{low}, {high}{right}")


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
            _fail("dataset", self.dataset, "a non-empty string")
        if not isinstance(self.image_size, int) or self.image_size < 0 or 0 < self.image_size < 32:
            _fail("image_size", self.image_size, "0 (native resolution) or an int >= 32")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            _fail("batch_size", self.batch_size, "a positive int (per replica)")
        parse_augment(self.augment)
        if self.crop_min_area != AUTO:
            _check_range("crop_min_area", self.crop_min_area, 0.0, 1.0, low_open=True)
        _check_range("randaugment_magnitude", self.randaugment_magnitude, 0.0, 1.0, low_open=True)
        _check_range("mixup_alpha", self.mixup_alpha, 0.0, math.inf, low_open=True, high_open=True)
        if self.progressive not in ("auto", "on", "off"):
            _fail("progressive", self.progressive, '"auto", "on" or "off"')
        if not _is_int(self.progressive_stages) or self.progressive_stages < 0:
            _fail("progressive_stages", self.progressive_stages, "0 (auto) or a positive int")
        if (
            not _is_int(self.progressive_start_size)
            or 0 < self.progressive_start_size < 32
            or (self.progressive_start_size < 0)
        ):
            _fail("progressive_start_size", self.progressive_start_size, "0 (auto) or an int >= 32")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which network and how its layers are set up for training.

    Attributes:
        name: variant, "b0".."b7" or "lite0".."lite4".
        width: width coefficient override (0 = the variant's).
        depth: depth coefficient override (0 = the variant's).
        weights: None, "imagenet" or a .keras / weights file to start from;
            layers are matched by name, mismatching shapes (the classifier of
            another dataset) are left at their initial values.
        dropout_rate: dropout before the classifier (-1 = the variant's).
        drop_connect_rate: stochastic-depth rate of the last block; -1 = auto
            (scaled with the run's length, see recipe.auto_drop_connect).
        sync_bn: synchronize BatchNorm statistics across replicas.
        freeze_bn: keep every BatchNorm layer in inference mode (fine-tuning).
    """

    name: str = "lite0"
    width: float = 0.0
    depth: float = 0.0
    weights: str | None = None
    dropout_rate: float = -1.0
    drop_connect_rate: float = AUTO
    sync_bn: bool = False
    freeze_bn: bool = False

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
            _fail("weights", self.weights, 'None, "imagenet" or a file path')


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
            _fail("recipe", self.recipe, f"one of {RECIPES}")
        if self.name not in ("auto",) + OPTIMIZERS:
            _fail("optimizer", self.name, f'"auto" or one of {OPTIMIZERS}')
        if self.schedule not in ("auto",) + SCHEDULES:
            _fail("lr_schedule", self.schedule, f'"auto" or one of {SCHEDULES}')
        if self.base_lr != AUTO:
            _check_range("base_lr", self.base_lr, 0.0, math.inf, low_open=True, high_open=True)
        if not isinstance(self.lr_batch_size, int) or self.lr_batch_size < 0:
            _fail("lr_batch_size", self.lr_batch_size, "0 (auto) or a positive int")
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
            _fail("bn_images", self.bn_images, "-1 (auto), 0 (off) or a positive int")


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
            _fail("model_dir", self.model_dir, "a directory path")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            _fail("epochs", self.epochs, "a positive int")
        if not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 0:
            _fail("steps_per_epoch", self.steps_per_epoch, "an int >= 0")
        if self.strategy not in STRATEGIES:
            _fail("strategy", self.strategy, f"one of {STRATEGIES}")
        if not isinstance(self.cpu_devices, int) or self.cpu_devices < 0:
            _fail("cpu_devices", self.cpu_devices, "an int >= 0")
        if self.precision not in PRECISIONS:
            _fail("precision", self.precision, f"one of {PRECISIONS}")
        if self.verbose not in (0, 1, 2):
            _fail("verbose", self.verbose, "0, 1 or 2")
        if self.eval_split not in ("auto", "train", "validation", "test"):
            _fail("eval_split", self.eval_split, '"auto", "train", "validation" or "test"')


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "run": RunConfig,
}


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A whole run: data, model, optimizer recipe and runtime."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    run: RunConfig = RunConfig()

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        """Builds a config from `to_dict()` output; unknown keys are errors."""
        sections = {}
        for key, value in values.items():
            if key not in _SECTIONS:
                _fail("config section", key, f"one of {sorted(_SECTIONS)}")
            section = _SECTIONS[key]
            names = {f.name for f in dataclasses.fields(section)}
            unknown = sorted(set(value) - names)
            if unknown:
                _fail(f"{key} config keys", unknown, f"a subset of {sorted(names)}")
            sections[key] = section(**value)
        return cls(**sections)

    def replace(self, **sections):
        """`replace(data={"image_size": 64})`: a copy with some fields changed."""
        changed = {}
        for key, updates in sections.items():
            if key not in _SECTIONS:
                _fail("config section", key, f"one of {sorted(_SECTIONS)}")
            changed[key] = dataclasses.replace(getattr(self, key), **updates)
        return dataclasses.replace(self, **changed)


def config_differences(old, new, ignore=RUNTIME_FIELDS):
    """Lists "section.field: old -> new" for fields that differ (minus `ignore`)."""
    diffs = []
    old_d, new_d = old.to_dict(), new.to_dict()
    for section in _SECTIONS:
        for key in sorted(set(old_d[section]) | set(new_d[section])):
            name = f"{section}.{key}"
            a, b = old_d[section].get(key), new_d[section].get(key)
            if name not in ignore and a != b:
                diffs.append(f"{name}: {a!r} -> {b!r}")
    return diffs


# Flat flag name -> (section, field): the command-line surface of a config.
FLAG_FIELDS = {
    "dataset": ("data", "dataset"),
    "data_dir": ("data", "data_dir"),
    "image_size": ("data", "image_size"),
    "batch_size": ("data", "batch_size"),
    "augment": ("data", "augment"),
    "crop_min_area": ("data", "crop_min_area"),
    "randaugment_magnitude": ("data", "randaugment_magnitude"),
    "mixup_alpha": ("data", "mixup_alpha"),
    "cache": ("data", "cache"),
    "progressive": ("data", "progressive"),
    "progressive_stages": ("data", "progressive_stages"),
    "progressive_start_size": ("data", "progressive_start_size"),
    "model": ("model", "name"),
    "width": ("model", "width"),
    "depth": ("model", "depth"),
    "weights": ("model", "weights"),
    "dropout_rate": ("model", "dropout_rate"),
    "drop_connect_rate": ("model", "drop_connect_rate"),
    "sync_bn": ("model", "sync_bn"),
    "freeze_bn": ("model", "freeze_bn"),
    "recipe": ("optimizer", "recipe"),
    "bn_images": ("optimizer", "bn_images"),
    "optimizer": ("optimizer", "name"),
    "base_lr": ("optimizer", "base_lr"),
    "lr_batch_size": ("optimizer", "lr_batch_size"),
    "lr_schedule": ("optimizer", "schedule"),
    "warmup_epochs": ("optimizer", "warmup_epochs"),
    "decay_rate": ("optimizer", "decay_rate"),
    "decay_epochs": ("optimizer", "decay_epochs"),
    "rho": ("optimizer", "rho"),
    "momentum": ("optimizer", "momentum"),
    "epsilon": ("optimizer", "epsilon"),
    "label_smoothing": ("optimizer", "label_smoothing"),
    "weight_decay": ("optimizer", "weight_decay"),
    "ema_momentum": ("optimizer", "ema_momentum"),
    "model_dir": ("run", "model_dir"),
    "epochs": ("run", "epochs"),
    "steps_per_epoch": ("run", "steps_per_epoch"),
    "strategy": ("run", "strategy"),
    "cpu_devices": ("run", "cpu_devices"),
    "precision": ("run", "precision"),
    "jit_compile": ("run", "jit_compile"),
    "seed": ("run", "seed"),
    "verbose": ("run", "verbose"),
    "eval_split": ("run", "eval_split"),
}


def config_from_flags(values):
    """Builds an `ExperimentConfig` from {flag name: value} (see `FLAG_FIELDS`).

    Flags absent from `values` keep their defaults; unknown names are errors.
    Empty strings for optional paths (data_dir, weights) mean None.
    """
    sections = {}
    for name, value in values.items():
        if name not in FLAG_FIELDS:
            _fail("flag", name, f"one of {sorted(FLAG_FIELDS)}")
        section, field = FLAG_FIELDS[name]
        if field in ("data_dir", "weights") and value == "":
            value = None
        sections.setdefault(section, {})[field] = value
    return ExperimentConfig().replace(**sections)
