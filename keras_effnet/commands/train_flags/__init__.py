"""`keras-effnet train`'s flags, one module per section: absl groups `--help` by module.

The sections follow `keras_effnet.training.config.FLAG_FIELDS`; `augmentation`
holds the data section's augmentation and progressive-learning flags.
"""

from keras_effnet.commands.train_flags import augmentation, data, model, recipe, run

# The order of `keras-effnet train --help`.
SECTIONS = (data, model, recipe, augmentation, run)
