"""`RunPlan`: a run resolved once, the value every part of a run is built from.

`resolve(config, dataset_info, num_replicas)` fills every "auto" (None)
value of an `ExperimentConfig` and computes what follows from the dataset and
the strategy (global batch, steps, learning rate, progressive stages); the
builders, the fit, the run directory, the run's description and the
benchmarks all read this one frozen value. config.json records it as
`{"config": plan.config.to_dict(), "derived": plan.to_dict()}`, the layout
runs written before the plan existed also have (so they still resume).
"""

import dataclasses
import os
import types

import keras
import tensorflow as tf

from keras_effnet.core import variants
from keras_effnet.errors import ConfigError
from keras_effnet.training import modeling, progressive, recipe
from keras_effnet.training.config import ExperimentConfig
from keras_effnet.training.progressive import Stage


def _frozen(mapping):
    return types.MappingProxyType(dict(mapping))


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A resolved run.

    Attributes:
        config: the `ExperimentConfig` with every auto (None) value filled in.
        num_replicas: replicas in sync.
        global_batch_size: images per step over all replicas.
        steps_per_epoch, total_steps: the run's length in optimizer steps.
        peak_learning_rate: the learning rate after warmup (linear scaling rule).
        warmup_steps: warmup length in steps.
        num_classes: the dataset's classes.
        dataset_kind: "digits", "folder" or "tfds".
        splits: split name -> examples (0 = absent), read-only.
        split_sources: split name -> where the split comes from, read-only.
        progressive_reason: why progressive learning is on or off.
        stages: the progressive stages (one stage at the targets when off).
        versions: library name -> version ("tensorflow", "keras"), read-only.
        strategy: the distribution strategy's description; set by `train`
            (None where no strategy runs the plan, as in `resolve`).
        source_image_side: the source images' shorter side (None: unknown),
            which the auto resolution follows.
    """

    config: ExperimentConfig
    num_replicas: int
    global_batch_size: int
    steps_per_epoch: int
    total_steps: int
    peak_learning_rate: float
    warmup_steps: int
    num_classes: int
    dataset_kind: str
    splits: types.MappingProxyType
    split_sources: types.MappingProxyType
    progressive_reason: str
    stages: tuple[Stage, ...]
    versions: types.MappingProxyType
    strategy: str | None = None
    source_image_side: int | None = None

    def __post_init__(self):
        for name in ("splits", "split_sources", "versions"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "stages", tuple(self.stages))

    def replace(self, **changes):
        """A copy with fields changed (`config` sections as in `ExperimentConfig.replace`)."""
        sections = {
            k: changes.pop(k) for k in ("data", "model", "optimizer", "run") if k in changes
        }
        if sections:
            changes["config"] = changes.get("config", self.config).replace(**sections)
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """config.json's "derived" values (JSON types); "strategy" only when set."""
        values = {
            "num_replicas": self.num_replicas,
            "global_batch_size": self.global_batch_size,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "num_classes": self.num_classes,
            "dataset_kind": self.dataset_kind,
            "splits": dict(self.splits),
            "split_sources": dict(self.split_sources),
            "progressive": {
                "reason": self.progressive_reason,
                "stages": [s.to_dict() for s in self.stages],
            },
            "versions": dict(self.versions),
            "source_image_side": self.source_image_side,
        }
        if self.strategy is not None:
            values["strategy"] = self.strategy
        return values


def _pick(value, auto):
    """`value`, or `auto` where it is None ("auto": the recipe or the dataset decides)."""
    return auto if value is None else value


def resolve(config, info, num_replicas):
    """The `RunPlan` of `config` on dataset `info` with `num_replicas` replicas: every auto filled.

    Raises:
        ConfigError: a dataset of fewer than 2 classes, a training split
            smaller than one global batch, or an impossible progressive schedule.
    """
    variant = variants.get_variant(config.model.name)
    if info.num_classes < 2:
        raise ConfigError(
            f"A classifier needs at least 2 classes; dataset {config.data.dataset!r} has "
            f"{info.num_classes} ({', '.join(info.class_names)}): its accuracy would be 1.0 by "
            f"construction. Received: dataset={config.data.dataset!r}"
        )
    weights = config.model.weights
    if config.data.image_size:
        image_size = config.data.image_size
    elif weights:  # The resolution the weights were trained at.
        image_size = modeling.weights_resolution(weights, variant)
    else:
        image_size = recipe.auto_image_size(info.image_side, variant.resolution)
    freeze_bn = _pick(config.model.freeze_bn, bool(weights))
    crop_min_area = _pick(config.data.crop_min_area, recipe.AUTO_CROP_MIN_AREA)
    global_batch = config.data.batch_size * num_replicas
    train_examples = info.splits["train"]
    steps = config.run.steps_per_epoch or train_examples // global_batch
    if steps < 1:
        raise ConfigError(
            f"The training split ({train_examples} examples) is smaller than one global batch "
            f"({config.data.batch_size} x {num_replicas} replicas). "
            f"Received: batch_size={config.data.batch_size}"
        )
    epochs = _pick(config.run.epochs, recipe.auto_epochs(steps))
    head_epochs = (
        recipe.auto_head_epochs(epochs, weights)
        if config.model.head_epochs is None
        else min(config.model.head_epochs, epochs)
    )
    total = steps * epochs
    augment = config.data.augment
    if augment == "auto":
        augment = recipe.auto_augment(info.kind, total, info.image_side)
    opt = config.optimizer
    name = recipe.recipe_name(opt.recipe, config.model.weights)
    table = recipe.RECIPES[name]
    pick = {key: getattr(opt, key) for key in ("name", "schedule")}  # Enums: "auto".
    pick = {key: table[key] if value == "auto" else value for key, value in pick.items()}
    for key in ("base_lr", "label_smoothing", "weight_decay"):  # None = auto.
        pick[key] = _pick(getattr(opt, key), table[key])
    lr_batch = _pick(opt.lr_batch_size, table["lr_batch_size"])
    warmup = recipe.auto_warmup_epochs(epochs) if opt.warmup_epochs is None else opt.warmup_epochs
    ema = (
        recipe.auto_ema_momentum(total, table["ema_cap"], table["ema_fraction"])
        if opt.ema_momentum is None
        else opt.ema_momentum
    )
    if opt.bn_images is None:  # Frozen BatchNorm keeps the source model's statistics.
        bn_images = 0 if freeze_bn else min(recipe.AUTO_BN_IMAGES, train_examples)
    else:
        bn_images = opt.bn_images
    dropout = _pick(config.model.dropout_rate, variant.dropout)
    drop_connect = (
        recipe.auto_drop_connect(total)
        if config.model.drop_connect_rate is None
        else config.model.drop_connect_rate
    )
    if config.run.eval_split != "auto":
        eval_split = config.run.eval_split
    else:
        eval_split = "test" if info.splits["test"] else "validation"
    stages, reason = progressive.resolve_stages(config.data, epochs, image_size, dropout, total)
    resolved = config.replace(
        data={
            "image_size": image_size,
            "augment": augment,
            "crop_min_area": float(crop_min_area),
            "progressive": "on" if len(stages) > 1 else "off",
            "progressive_stages": len(stages),
            "progressive_start_size": stages[0].image_size,
        },
        model={
            "name": variant.name,
            "dropout_rate": dropout,
            "drop_connect_rate": float(drop_connect),
            "freeze_bn": freeze_bn,
            "head_epochs": int(head_epochs),
            "stem_strides": _pick(config.model.stem_strides, recipe.auto_stem_strides(image_size)),
        },
        optimizer={
            "recipe": name,
            **pick,
            "lr_batch_size": lr_batch,
            "warmup_epochs": float(warmup),
            "ema_momentum": float(round(ema, 6)),
            "bn_images": int(bn_images),
        },
        run={
            "model_dir": os.path.abspath(config.run.model_dir),
            "epochs": epochs,
            "eval_split": eval_split,
        },
    )
    return RunPlan(
        config=resolved,
        num_replicas=num_replicas,
        global_batch_size=global_batch,
        steps_per_epoch=steps,
        total_steps=total,
        peak_learning_rate=recipe.peak_learning_rate(pick["base_lr"], global_batch, lr_batch),
        warmup_steps=int(round(warmup * steps)),
        num_classes=info.num_classes,
        dataset_kind=info.kind,
        splits=info.splits,
        split_sources=info.sources,
        progressive_reason=reason,
        stages=tuple(stages),
        versions={"tensorflow": tf.__version__, "keras": keras.__version__},
        source_image_side=info.image_side,
    )
