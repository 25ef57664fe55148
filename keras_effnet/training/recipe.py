"""Training recipes: optimizer, learning-rate schedule, EMA, regularization.

Three named recipes (`RECIPES`); every "auto" field of an `OptimizerConfig`
resolves to the recipe's value and is recorded in config.json.

"scratch" (the default without --weights) is built for what users run: 10-50
epochs on 1k-100k images. AdamW (decoupled weight decay 0.05, not on
BatchNorm or biases), peak LR 2e-3 per 64 images, linear warmup then cosine
to zero, label smoothing 0.1, an EMA whose window is 5 % of the run,
stochastic depth scaled with the run's length, and BatchNorm statistics
re-estimated for the evaluated (EMA) weights before every validation. "finetune"
(the default with --weights) is the same with a tenth of the decay (so the
copied weights are not pulled to zero); a fifth of the learning rate was
measured and under-fit short fine-tuning runs (docs/training.md, "Fine-tuning").

"paper" follows tensorflow/tpu `models/official/efficientnet` (the paper's code):
RMSProp (rho 0.9, momentum 0.9, epsilon 1e-3, mean-square slots initialized
to 1 as TF1's RMSPropOptimizer does), peak LR 0.016 per 256 images scaled
linearly with the global batch, linear warmup then exponential decay 0.97
every 2.4 epochs (staircase, counted from step 0), label smoothing 0.1, L2
weight decay 1e-5 and an exponential moving average of the weights used for
evaluation and export.

`plan.resolve` applies a recipe to a config, a dataset and a strategy (the
run's `plan.RunPlan`, every "auto" value filled in).
"""

import math

import keras
import tensorflow as tf

# Recipe table: (optimizer, base_lr, lr_batch_size, schedule, label_smoothing,
# weight_decay, EMA window as a fraction of the run, EMA cap).
RECIPES = {
    "scratch": dict(
        name="adamw",
        base_lr=2e-3,
        lr_batch_size=64,
        schedule="cosine",
        label_smoothing=0.1,
        weight_decay=0.05,
        ema_fraction=0.05,
        ema_cap=0.9999,
    ),
    "finetune": dict(
        name="adamw",
        base_lr=2e-3,
        lr_batch_size=64,
        schedule="cosine",
        label_smoothing=0.1,
        weight_decay=0.005,
        ema_fraction=0.05,
        ema_cap=0.9999,
    ),
    "paper": dict(
        name="rmsprop",
        base_lr=0.016,
        lr_batch_size=256,
        schedule="exponential",
        label_smoothing=0.1,
        weight_decay=1e-5,
        ema_fraction=0.1,
        ema_cap=0.9999,
    ),
}
AUTO_BN_IMAGES = 512
AUTO_CROP_MIN_AREA = 0.5
AUGMENT_MIN_STEPS = 2000
SMALL_SIDE = 64
AUTO_EPOCHS = 10
AUTO_MIN_STEPS = 500
AUTO_MAX_EPOCHS = 100


def recipe_name(recipe, weights):
    """ "auto" -> "finetune" when starting from weights, else "scratch"."""
    if recipe != "auto":
        return recipe
    return "finetune" if weights else "scratch"


def auto_augment(dataset_kind, total_steps, source_side=None, min_steps=AUGMENT_MIN_STEPS):
    """ "none" for the bundled digits; "shift" for small images; else "crop,flip" from `min_steps`.

    Digits fill their 8x8 frame: any crop cuts strokes, a flip makes other
    digits. Images under 64 px (`SMALL_SIDE`) get "shift" (scale and
    translation, no flip: right for digits and text too) whatever the run's
    length: without it Lite0 memorised 1,350 images (training accuracy 0.99)
    and scored 2-5 points lower on test (docs/training.md, "Small images").
    Other short runs get none: augmentation slowed fitting more than it
    helped (on 2k Fashion-MNIST images, 28 steps per epoch, Lite0 with
    crop,flip was at chance after 3 epochs where it reached 49 % training
    accuracy without).
    """
    if dataset_kind == "digits":
        return "none"
    if source_side is not None and source_side < SMALL_SIDE:
        return "shift"
    if total_steps < min_steps:
        return "none"
    return "crop,flip"


def auto_epochs(steps_per_epoch, epochs=AUTO_EPOCHS, min_steps=AUTO_MIN_STEPS, cap=AUTO_MAX_EPOCHS):
    """`epochs`, or enough epochs for `min_steps` optimizer steps on a small dataset (at most `cap`).

    A run's length is what it learns in steps, not in epochs: 1,350 images are
    21 steps of 64, and 12 epochs (252 steps) left Lite0 with "shift" below its
    validation accuracy (training accuracy 0.72 on Fashion-MNIST); 24 epochs
    (504 steps) gained 2-4 points of test top-1 on three real datasets
    (docs/training.md, "Small images"). Datasets of 3,200 images or more at
    batch 64 keep 10 epochs.
    """
    return int(min(cap, max(epochs, math.ceil(min_steps / max(1, steps_per_epoch)))))


def auto_image_size(source_side, native, small=SMALL_SIDE):
    """The training resolution of source images whose shorter side is `source_side`.

    Images smaller than `small` (64) px are upsampled to it: the smallest
    size at which EfficientNet's last feature map is 2x2, not 1x1. On Lite0,
    12 epochs of 1,350 real 28-32 px images, 64 px beat training at 32 px
    by 5-6 points and the stride-1 stem at 32 px (about the same compute)
    by 1-3 (docs/training.md, "Small images"). Images between `small` and
    the variant's `native` resolution train at their own side (rounded up to
    a multiple of 8); larger or unknown (None) ones at `native`.
    """
    if source_side is None or source_side >= native:
        return native
    return max(small, -(-source_side // 8) * 8)


def auto_stem_strides(image_size):
    """1 for inputs under 64 px, else the paper's 2: the last feature map is at least 2x2.

    EfficientNet downsamples 32x: a 32 px input ends on a 1x1 feature map, so
    the last stages see no spatial layout. A stride-1 stem downsamples 16x
    (2x2 at 32 px), at about the cost of the input upsampled 2x
    (docs/training.md, "Small images").
    """
    return 1 if image_size < 64 else 2


def auto_drop_connect(total_steps, rate=0.2, full_steps=10_000):
    """Stochastic depth grows with the run: 0.2 (the paper's) from 10k steps on.

    Short runs under-fit long before they over-fit (a 20-epoch run on 4k
    images is ~1.2k steps), and dropping blocks slows fitting.
    """
    return round(rate * min(1.0, total_steps / full_steps), 4)


@keras.saving.register_keras_serializable(package="keras_effnet")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak_lr`, then exponential, cosine or constant.

    Args:
        peak_lr: learning rate at the end of warmup.
        warmup_steps: warmup length in steps (0 = none); step s < warmup_steps
            uses peak_lr * (s + 1) / warmup_steps.
        total_steps: steps of the whole run (cosine reaches 0 there).
        steps_per_epoch: steps per epoch (for `decay_epochs`).
        kind: "exponential", "cosine" or "constant".
        decay_rate: exponential factor applied every `decay_epochs`.
        decay_epochs: exponential staircase period in epochs.
    """

    def __init__(
        self,
        peak_lr,
        warmup_steps,
        total_steps,
        steps_per_epoch,
        kind="exponential",
        decay_rate=0.97,
        decay_epochs=2.4,
    ):
        if kind not in ("exponential", "cosine", "constant"):
            raise ValueError(
                f'`kind` must be "exponential", "cosine" or "constant". Received: kind={kind!r}'
            )
        self.peak_lr = float(peak_lr)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.steps_per_epoch = int(steps_per_epoch)
        self.kind = kind
        self.decay_rate = float(decay_rate)
        self.decay_epochs = float(decay_epochs)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        if self.kind == "exponential":
            period = max(1.0, self.decay_epochs * self.steps_per_epoch)
            decayed = self.peak_lr * tf.pow(self.decay_rate, tf.floor(step / period))
        elif self.kind == "cosine":
            progress = tf.minimum(step / max(1, self.total_steps), 1.0)
            decayed = 0.5 * self.peak_lr * (1.0 + tf.cos(math.pi * progress))
        else:
            decayed = tf.constant(self.peak_lr, tf.float32)
        if self.warmup_steps <= 0:
            return decayed
        warm = self.peak_lr * (step + 1.0) / float(self.warmup_steps)
        return tf.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {
            "peak_lr": self.peak_lr,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "kind": self.kind,
            "decay_rate": self.decay_rate,
            "decay_epochs": self.decay_epochs,
        }


@keras.saving.register_keras_serializable(package="keras_effnet")
class TF1RMSprop(keras.optimizers.RMSprop):
    """Keras RMSprop with mean-square slots starting at 1, as TF1's RMSPropOptimizer.

    Keras starts them at 0, so the first updates are ~1/sqrt(1 - rho) = 3x the
    gradient; the reference recipe was tuned with slots at 1.
    """

    def build(self, var_list):
        if self.built:
            return
        keras.optimizers.Optimizer.build(self, var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity", initializer="ones")
        self._momentums = (
            self.add_optimizer_variables(var_list, "momentum") if self.momentum > 0 else []
        )
        self._average_gradients = (
            self.add_optimizer_variables(var_list, "average_gradient") if self.centered else []
        )


def peak_learning_rate(base_lr, global_batch_size, lr_batch_size=256):
    """Linear scaling rule: base_lr per `lr_batch_size` images."""
    return base_lr * global_batch_size / lr_batch_size


def auto_head_epochs(epochs, weights):
    """Head-only epochs before the backbone trains: a fifth of the run (1-5) from weights, else 0.

    Runs of one epoch get none, so the whole network always gets to train.

    A new classifier starts at zero (`modeling.zero_classifier`); trained
    alone for a few epochs it gives the backbone useful gradients when it is
    unfrozen, instead of large ones that undo what the weights learnt
    (Keras' transfer-learning guide trains the head first for this reason).
    """
    if not weights or epochs < 2:  # one epoch: no time to unfreeze; train everything
        return 0
    return int(min(5, max(1, round(epochs / 5))))


def auto_warmup_epochs(epochs):
    """Recipe warmup (5 epochs) capped at a tenth of short runs."""
    return min(5.0, epochs / 10.0)


def auto_ema_momentum(total_steps, cap=0.9999, fraction=0.1):
    """EMA momentum whose averaging window (1 / (1 - m) steps) is `fraction` of the run.

    The paper's 0.9999 averages over ~10k steps: right for 350 ImageNet epochs,
    but on a 3-epoch run the average would still be mostly the random initial
    weights. Long runs get the cap; runs of <= 1 / fraction steps get 0 (no EMA).
    """
    return max(0.0, min(cap, 1.0 - 1.0 / (fraction * max(1, total_steps))))


def make_optimizer(opt_config, schedule, ema_momentum):
    """Builds the optimizer of an `OptimizerConfig` with EMA when momentum > 0."""
    ema = dict(use_ema=ema_momentum > 0, ema_momentum=ema_momentum if ema_momentum > 0 else 0.99)
    if opt_config.name == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate=schedule, weight_decay=opt_config.weight_decay, **ema
        )
        # BatchNorm scale/offset and biases are not decayed.
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
        return optimizer
    if opt_config.name == "rmsprop":
        return TF1RMSprop(
            learning_rate=schedule,
            rho=opt_config.rho,
            momentum=opt_config.momentum,
            epsilon=opt_config.epsilon,
            **ema,
        )
    return keras.optimizers.SGD(
        learning_rate=schedule, momentum=opt_config.momentum, nesterov=True, **ema
    )


class KernelL2:
    """L2 penalty `weight_decay * 0.5 * sum(w^2)` for one kernel variable.

    Keras' TensorFlow trainer scales regularization losses by 1/replicas like
    the compiled loss, so the summed gradients see the penalty once.
    """

    def __init__(self, weight_decay):
        self.weight_decay = float(weight_decay)

    def __call__(self, value):
        return 0.5 * self.weight_decay * tf.reduce_sum(tf.square(tf.cast(value, tf.float32)))


def apply_weight_decay(model, weight_decay, optimizer_name="rmsprop"):
    """Attaches `KernelL2` to every trainable conv/dense kernel of `model`.

    BatchNorm gamma/beta and biases are not decayed (decided: the reference
    decays everything but BatchNorm; biases are a few hundred numbers and
    decaying them buys nothing). Returns the number of decayed variables.
    """
    if weight_decay <= 0 or optimizer_name == "adamw":  # AdamW decays in the optimizer.
        return 0
    count = 0
    for variable in model.trainable_weights:
        if variable.path.split("/")[-1] == "kernel":
            variable.regularizer = KernelL2(weight_decay)
            count += 1
    return count


def make_loss_and_metrics(num_classes, label_smoothing):
    """Categorical cross-entropy on one-hot / MixUp labels, top-1 and (over 5 classes) top-5."""
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if num_classes > 5:  # With <= 5 classes top-5 is always 1.0 (issue 21).
        metrics.append(keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"))
    return loss, metrics


def ema_weights(model):
    """The model's weights with trainable ones replaced by their EMA (numpy).

    Reads the optimizer's moving averages directly (no swapping), in
    `model.weights` order. Without EMA, the plain weights.
    """
    optimizer = model.optimizer
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer.
    averages = {}
    if optimizer is not None and getattr(optimizer, "use_ema", False) and optimizer.built:
        for var, avg in zip(
            optimizer._trainable_variables, optimizer._model_variables_moving_average
        ):
            if avg is not None:
                averages[id(var)] = avg
    return [keras.ops.convert_to_numpy(averages.get(id(v), v)) for v in model.weights]
