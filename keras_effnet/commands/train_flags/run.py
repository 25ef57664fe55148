"""run: the run directory, length, devices and console."""

from absl import flags

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
