"""Trains an EfficientNet under tf.distribute (recipes: scratch, finetune, paper).

    keras-effnet train --model=lite0 --image_size=64 --epochs=10 --model_dir=runs/digits
    keras-effnet train --model=b0 --dataset=tf_flowers --model_dir=runs/b0
    keras-effnet train --model=lite0 --weights=imagenet --dataset=/data/photos --model_dir=runs/p

Re-running the same command resumes an interrupted run. A flag set to auto is
decided by the recipe or the dataset; the resolved values are printed and
recorded in <model_dir>/config.json.
"""

from absl import app, flags

from keras_effnet import commands
from keras_effnet.config_flags import define, module_name
from keras_effnet.training.config import ExperimentConfig

# One flag per field of the configuration's sections (keras_effnet/training/sections/).
_CONFIG = define(ExperimentConfig)
# `--help` lists the flags section by section.
FLAG_MODULES = tuple(module_name(s) for s in ("data", "model", "recipe", "augmentation", "run"))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from keras_effnet.cli import run_main
    from keras_effnet.training import train

    run_main(
        commands.prog(),
        lambda: train(_CONFIG.config()),
        interrupted=f"The last completed epoch is kept in {flags.FLAGS.model_dir}; "
        "re-run the same command to resume.",
    )
