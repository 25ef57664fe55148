"""Trains an EfficientNet under tf.distribute (recipes: scratch, finetune, paper).

    keras-effnet train --model=lite0 --image_size=64 --epochs=10 --model_dir=runs/digits
    keras-effnet train --model=b0 --dataset=tf_flowers --model_dir=runs/b0
    keras-effnet train --model=lite0 --weights=imagenet --dataset=/data/photos --model_dir=runs/p

Re-running the same command resumes an interrupted run.
"""

from absl import app, flags

from keras_effnet import commands

_DATASET = flags.DEFINE_string(
    "dataset",
    "digits",
    '"digits" (offline), an image folder (<root>/<class>/*.jpg) or a TFDS name.',
)
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data directory.")
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", 0, "Input side; 0 = the variant's native resolution."
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 64, "Batch size per replica (global = x replicas)."
)
_AUGMENT = flags.DEFINE_string(
    "augment",
    "auto",
    '"auto" (digits: none; otherwise crop,flip), "none" or a comma list of crop,flip,randaugment,mixup. '
    'Use "crop" for digits or text (a flip changes the class).',
)
_CROP_MIN_AREA = flags.DEFINE_float(
    "crop_min_area",
    -1.0,
    "Smallest area fraction of the random crop; -1 = auto (0.5; paper: 0.08).",
)
_RANDAUGMENT_MAGNITUDE = flags.DEFINE_float(
    "randaugment_magnitude", 0.5, "RandAugment factor in (0, 1]."
)
_MIXUP_ALPHA = flags.DEFINE_float("mixup_alpha", 0.2, "MixUp Beta(alpha, alpha).")
_CACHE = flags.DEFINE_bool(
    "cache", True, "Cache encoded examples in memory (--nocache for large datasets)."
)
_PROGRESSIVE = flags.DEFINE_enum(
    "progressive",
    "auto",
    ["auto", "on", "off"],
    "Progressive learning (EfficientNetV2): image size, dropout, RandAugment and MixUp grow over "
    "--progressive_stages stages to their targets. auto = on from 64 px, 2 epochs per stage and "
    "2,000 steps.",
)
_PROGRESSIVE_STAGES = flags.DEFINE_integer(
    "progressive_stages", 0, "Stages of --progressive; 0 = auto (4)."
)
_PROGRESSIVE_START_SIZE = flags.DEFINE_integer(
    "progressive_start_size",
    0,
    "First stage's image size; 0 = auto (half the target, multiple of 8, >= 32).",
)

_MODEL = flags.DEFINE_string("model", "lite0", "Variant: b0..b7, lite0..lite4.")
_WIDTH = flags.DEFINE_float("width", 0.0, "Width coefficient override (0 = variant's).")
_DEPTH = flags.DEFINE_float("depth", 0.0, "Depth coefficient override (0 = variant's).")
_WEIGHTS = flags.DEFINE_string(
    "weights",
    "",
    'Start from: "imagenet" (every variant), "timm:<architecture>.<tag>", or a timm-format '
    '.safetensors / .keras / weights file (fine-tuning; README "Fine-tuning").',
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

_MODEL_DIR = flags.DEFINE_string(
    "model_dir", None, "(required) Run directory (re-run to resume).", required=True
)
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Epochs.")
_STEPS_PER_EPOCH = flags.DEFINE_integer(
    "steps_per_epoch", 0, "0 = one pass over the training split."
)
_STRATEGY = flags.DEFINE_string(
    "strategy",
    "auto",
    "auto, mirrored, multi_worker, one_device or cpu; auto = mirrored over 2+ GPUs, else one device.",
)
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "Split the CPU into N logical devices (--strategy=mirrored without GPUs)."
)
_PRECISION = flags.DEFINE_string(
    "precision", "float32", "float32, mixed_float16 or mixed_bfloat16."
)
_JIT_COMPILE = flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step.")
_SEED = flags.DEFINE_integer(
    "seed", 0, "Seed of initialization, shuffling and augmentation; the run uses exactly this (0)."
)
_VERBOSE = flags.DEFINE_integer(
    "verbose", 1, "0 silent, 1 progress bar, 2 one line per epoch plus TensorFlow's INFO logs."
)
_EVAL_SPLIT = flags.DEFINE_string(
    "eval_split",
    "auto",
    "Split evaluated with best.keras at the end; auto = test (validation if none).",
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from keras_effnet.cli import run_main
    from keras_effnet.training import config as config_lib
    from keras_effnet.training import train

    def body():
        config = config_lib.config_from_flags(
            {name: flags.FLAGS[name].value for name in config_lib.FLAG_FIELDS}
        )
        train(config)

    run_main(
        commands.prog(),
        body,
        interrupted=f"The last completed epoch is kept in {_MODEL_DIR.value}; "
        "re-run the same command to resume.",
    )
