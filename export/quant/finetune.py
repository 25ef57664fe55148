"""Short fine-tuning of tf_keras models (QAT and pruning) on our datasets.

Shared by `qat.py` and `prune.py`. Data come from `keras_effnet.data`
(float32 RGB 0..255, int labels), the same pipeline as training; the model
must have been built inside `strategy.scope()` (see `resolve_strategy`).
"""

import numpy as np
import tensorflow as tf

from keras_effnet import data


def resolve_strategy(strategy=None):
    """Returns the `tf.distribute.Strategy` to fine-tune under.

    Args:
      strategy: None (the current/default strategy) or a strategy object
        (e.g. from `keras_effnet.training.strategy.make_strategy`, which is
        what `keras-effnet export` --strategy uses).
    """
    if strategy is None:
        return tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise ValueError(
            f"strategy: expected None or a tf.distribute.Strategy, got {type(strategy).__name__}"
        )
    return strategy


def image_size(model):
    """Square input side of a single-input NHWC model."""
    height, width = model.inputs[0].shape[1:3]
    if height is None or height != width:
        raise ValueError(
            f"model: expected a static square input, got {tuple(model.inputs[0].shape)}"
        )
    return int(height)


def output_is_probability(model):
    """True if the last layer of an unwrapped model ends in softmax.

    Decide this before wrapping (QAT replaces activations by wrappers).
    """
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


def train_dataset(dataset, size, batch_size, *, data_dir=None, augment=None, seed=0):
    """(tf.data train pipeline, steps per epoch) for a dataset name."""
    if isinstance(dataset, tuple):
        images, labels = (np.asarray(a) for a in dataset)
        ds = (
            tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels.astype("int32")))
            .shuffle(len(images), seed=seed)
            .repeat()
            .batch(batch_size, drop_remainder=True)
        )
        return ds, max(1, len(images) // batch_size)
    info = data.dataset_info(dataset, data_dir=data_dir)
    ds = data.load_dataset(
        dataset,
        "train",
        size,
        batch_size,
        data_dir=data_dir,
        shuffle=True,
        augment=augment,
        drop_remainder=True,
        seed=seed,
        repeat=True,
    )
    return ds, max(1, info.splits["train"] // batch_size)


def fine_tune(
    model,
    dataset,
    *,
    epochs=1,
    batch_size=32,
    learning_rate=1e-4,
    steps_per_epoch=None,
    strategy=None,
    data_dir=None,
    augment=None,
    callbacks=(),
    seed=0,
    verbose=0,
    from_logits=None,
):
    """Compiles and fits a tf_keras classifier for a few epochs.

    Args:
      model: tf_keras model built inside `strategy.scope()`.
      dataset: A name for `keras_effnet.data.load_dataset` (train split) or
        an (images, labels) tuple of arrays.
      epochs: Passes over the train split (at least 1).
      batch_size: Global batch size.
      learning_rate: Adam learning rate (fine-tuning: small).
      steps_per_epoch: Default: train examples // batch size.
      strategy: The strategy the model was built under (see
        `resolve_strategy`).
      data_dir: For named datasets.
      augment: Augmentations for `load_dataset` (default none).
      callbacks: Extra tf_keras callbacks (pruning needs UpdatePruningStep).
      seed: Shuffle/augmentation seed.
      verbose: Keras fit verbosity.
      from_logits: Whether outputs are logits; default: not
        `output_is_probability(model)` (pass it for wrapped models).

    Returns:
      The fit history dict (loss and accuracy per epoch).
    """
    import tf_keras  # Optional (the 'qat' extra); Keras 2, for tfmot only.

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: expected an int >= 1, got {epochs!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate: expected > 0, got {learning_rate!r}")
    strategy = resolve_strategy(strategy)
    if from_logits is None:
        from_logits = not output_is_probability(model)
    ds, steps = train_dataset(
        dataset, image_size(model), batch_size, data_dir=data_dir, augment=augment, seed=seed
    )
    with strategy.scope():
        model.compile(
            optimizer=tf_keras.optimizers.Adam(learning_rate),
            loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
            metrics=["accuracy"],
        )
    history = model.fit(
        ds,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch or steps,
        callbacks=list(callbacks),
        verbose=verbose,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
