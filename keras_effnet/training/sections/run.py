"""`RunConfig`: where and how the run executes."""

import dataclasses

from keras_effnet.config_flags import option
from keras_effnet.training.sections.checks import (
    EVAL_SPLITS,
    PRECISIONS,
    STRATEGIES,
    fail,
    is_int,
)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where and how the run executes.

    Attributes:
        model_dir: output directory (config.json, best/last.keras, logs,
            backup); re-running with the same directory resumes.
        epochs: number of epochs; None = auto (`recipe.auto_epochs`: at least
            10 epochs and 500 optimizer steps, at most 100 epochs).
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
    epochs: int | None = option(
        None,
        "Epochs.",
        section="run",
        auto="10, or more for small datasets: at least 500 steps, at most 100 epochs",
    )
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
        if self.epochs is not None and (not is_int(self.epochs) or self.epochs < 1):
            fail("epochs", self.epochs, "auto (None) or a positive int")
        if not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 0:
            fail("steps_per_epoch", self.steps_per_epoch, "an int >= 0")
        if self.strategy not in STRATEGIES:
            fail("strategy", self.strategy, f"one of {STRATEGIES}")
        if not isinstance(self.cpu_devices, int) or self.cpu_devices < 0:
            fail("cpu_devices", self.cpu_devices, "an int >= 0")
        if self.precision not in PRECISIONS:
            fail("precision", self.precision, f"one of {PRECISIONS}")
        if not is_int(self.seed) or self.seed < 0:
            fail("seed", self.seed, "an int >= 0")
        if self.verbose not in (0, 1, 2):
            fail("verbose", self.verbose, "0, 1 or 2")
        if self.eval_split not in EVAL_SPLITS:
            fail("eval_split", self.eval_split, '"auto", "train", "validation" or "test"')
