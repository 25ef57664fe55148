"""Trains an EfficientNet under tf.distribute (recipes: scratch, finetune, paper).

    keras-effnet train --model=lite0 --image_size=64 --epochs=10 --model_dir=runs/digits
    keras-effnet train --model=b0 --dataset=tf_flowers --model_dir=runs/b0
    keras-effnet train --model=lite0 --weights=imagenet --dataset=/data/photos --model_dir=runs/p

Re-running the same command resumes an interrupted run.
"""

from absl import app, flags

from keras_effnet import commands
from keras_effnet.commands import train_flags

# `--help` lists the flags section by section.
FLAG_MODULES = tuple(m.__name__ for m in train_flags.SECTIONS)


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
        interrupted=f"The last completed epoch is kept in {flags.FLAGS.model_dir}; "
        "re-run the same command to resume.",
    )
