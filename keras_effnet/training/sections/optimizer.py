"""`OptimizerConfig`: the training recipe (optimizer, schedule, regularization, EMA)."""

import dataclasses
import math

from keras_effnet.config_flags import option
from keras_effnet.training.sections.checks import (
    OPTIMIZERS,
    RECIPES,
    SCHEDULES,
    check_range,
    fail,
    is_int,
)


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
            check_range("base_lr", self.base_lr, 0.0, math.inf, low_open=True, high_open=True)
        if self.lr_batch_size is not None and (
            not is_int(self.lr_batch_size) or self.lr_batch_size < 1
        ):
            fail("lr_batch_size", self.lr_batch_size, "auto (None) or a positive int")
        if self.warmup_epochs is not None:
            check_range("warmup_epochs", self.warmup_epochs, 0.0, math.inf, high_open=True)
        check_range("decay_rate", self.decay_rate, 0.0, 1.0, low_open=True)
        check_range("decay_epochs", self.decay_epochs, 0.0, math.inf, low_open=True, high_open=True)
        check_range("rho", self.rho, 0.0, 1.0, high_open=True)
        check_range("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_range("epsilon", self.epsilon, 0.0, 1.0, low_open=True)
        if self.label_smoothing is not None:
            check_range("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        if self.weight_decay is not None:
            check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        if self.ema_momentum is not None:
            check_range("ema_momentum", self.ema_momentum, 0.0, 1.0, high_open=True)
        if self.bn_images is not None and (not is_int(self.bn_images) or self.bn_images < 0):
            fail("bn_images", self.bn_images, "auto (None), 0 (off) or a positive int")
