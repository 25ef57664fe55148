"""model: the network: variant, scaling, start weights, regularization."""

from absl import flags

_MODEL = flags.DEFINE_string("model", "lite0", "Variant: b0..b7, lite0..lite4.")
_WIDTH = flags.DEFINE_float("width", 0.0, "Width coefficient override (0 = variant's).")
_DEPTH = flags.DEFINE_float("depth", 0.0, "Depth coefficient override (0 = variant's).")
_WEIGHTS = flags.DEFINE_string(
    "weights",
    "",
    'Start from: "imagenet" (every variant), "timm:<architecture>.<tag>", or a timm-format '
    ".safetensors / .keras / weights file to fine-tune.",
)
_DROPOUT_RATE = flags.DEFINE_float(
    "dropout_rate", -1.0, "Dropout before the classifier; -1 = variant's."
)
_DROP_CONNECT_RATE = flags.DEFINE_float(
    "drop_connect_rate",
    -1.0,
    "Stochastic depth rate of the last block; -1 = auto (0.2 x run steps / 10k, max 0.2).",
)
_SYNC_BN = flags.DEFINE_bool("sync_bn", False, "Synchronize BatchNorm statistics across replicas.")
_FREEZE_BN = flags.DEFINE_bool(
    "freeze_bn",
    None,
    "Keep BatchNorm layers frozen (inference mode); unset = auto (on with --weights).",
)
_HEAD_EPOCHS = flags.DEFINE_integer(
    "head_epochs",
    -1,
    "Head-only epochs (backbone frozen) before the whole network trains; -1 = auto "
    "(with --weights a fifth of the run, 1-5 epochs; else 0).",
)
