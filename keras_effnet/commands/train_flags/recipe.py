"""recipe: optimizer, learning-rate schedule, label smoothing, EMA."""

from absl import flags

_RECIPE = flags.DEFINE_string(
    "recipe",
    "auto",
    '"auto" (scratch, or finetune with --weights), "scratch", "finetune" or "paper" '
    "(tensorflow/tpu's 350-epoch ImageNet recipe). Every -1/auto flag below comes from the recipe.",
)
_OPTIMIZER = flags.DEFINE_string(
    "optimizer",
    "auto",
    '"adamw", "rmsprop" or "sgd"; auto = the recipe\'s (scratch, finetune: adamw; paper: rmsprop).',
)
_BASE_LR = flags.DEFINE_float(
    "base_lr", -1.0, "Learning rate per --lr_batch_size images (scratch 2e-3/64)."
)
_LR_BATCH_SIZE = flags.DEFINE_integer(
    "lr_batch_size", 0, "Batch size that --base_lr refers to; 0 = recipe's."
)
_LR_SCHEDULE = flags.DEFINE_string(
    "lr_schedule",
    "auto",
    '"exponential", "cosine" or "constant"; auto = the recipe\'s (scratch, finetune: cosine; '
    "paper: exponential).",
)
_WARMUP_EPOCHS = flags.DEFINE_float(
    "warmup_epochs", -1.0, "Linear warmup epochs; -1 = min(5, epochs/10)."
)
_DECAY_RATE = flags.DEFINE_float("decay_rate", 0.97, "Exponential decay factor.")
_DECAY_EPOCHS = flags.DEFINE_float("decay_epochs", 2.4, "Exponential decay period in epochs.")
_RHO = flags.DEFINE_float("rho", 0.9, "RMSProp rho.")
_MOMENTUM = flags.DEFINE_float("momentum", 0.9, "RMSProp / SGD momentum.")
_EPSILON = flags.DEFINE_float("epsilon", 1e-3, "RMSProp epsilon.")
_LABEL_SMOOTHING = flags.DEFINE_float(
    "label_smoothing", -1.0, "Label smoothing; -1 = recipe's (0.1)."
)
_WEIGHT_DECAY = flags.DEFINE_float(
    "weight_decay",
    -1.0,
    "AdamW decoupled decay (scratch 0.05) or RMSProp/SGD L2 on kernels (paper 1e-5).",
)
_EMA_MOMENTUM = flags.DEFINE_float(
    "ema_momentum",
    -1.0,
    "Weight EMA momentum; -1 = auto (window 5% of the run; paper 10%), 0 = off.",
)
_BN_IMAGES = flags.DEFINE_integer(
    "bn_images",
    -1,
    "Training images to re-estimate BatchNorm statistics on before each validation; "
    "-1 = auto (512), 0 = off.",
)
