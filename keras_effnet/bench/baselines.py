"""The baselines our recipe is compared against, in the same run (`training.compare`).

keras.applications B0 + Adam and a tutorial's small convnet: what a user would
write first (docs/training.md, "Training on real data"). They train as long as
our default run (`default_epochs`) at its default batch size.
"""

import time

import keras

from keras_effnet import data
from keras_effnet.training import config as config_lib
from keras_effnet.training import plan

BASELINE_BATCH = config_lib.ExperimentConfig().data.batch_size  # `keras-effnet train`'s default.


def default_epochs(dataset):
    """The epochs `keras-effnet train` resolves to on `dataset` with every flag at its default."""
    config = config_lib.config_from_flags({"dataset": dataset, "model_dir": "unused"})
    return plan.resolve(config, data.dataset_info(dataset), 1).config.run.epochs


def bn_momentum_for(steps, window_fraction=0.1):
    """BatchNorm momentum whose averaging window (1 / (1 - m) steps) is a tenth of the run.

    keras.applications' 0.99 averages over ~100 steps, which a short run's
    fast-moving weights outrun: the averages the test sees lag the weights,
    and a run of a few hundred steps can score near chance though it fits
    its training set (docs/training.md, "Training on real data"). Capped at 0.99.
    """
    return round(min(0.99, max(0.0, 1.0 - 1.0 / (window_fraction * max(1, steps)))), 4)


def fit_and_score(model, dataset, image_size, epochs, seed, batch_size, learning_rate=1e-3):
    """Adam(`learning_rate`) on the training split (validation unused), scored on test."""
    info = data.dataset_info(dataset)
    common = dict(one_hot=True, num_classes=info.num_classes)
    train_ds = data.load_dataset(
        dataset, "train", image_size, batch_size, shuffle=True, seed=seed, **common
    )
    test_ds = data.load_dataset(dataset, "test", image_size, batch_size, **common)
    start = time.perf_counter()
    model.compile(
        keras.optimizers.Adam(learning_rate), "categorical_crossentropy", metrics=["accuracy"]
    )
    # The stream is shuffled by `load_dataset`; fit's own `shuffle` does not apply to it.
    history = model.fit(train_ds, epochs=epochs, shuffle=False, verbose=0).history
    test = model.evaluate(test_ds, verbose=0, return_dict=True)
    return {
        "train_accuracy": history["accuracy"][-1],
        "val_accuracy": None,
        "test_top1": test["accuracy"],
        "wall_s": time.perf_counter() - start,
        "epochs": epochs,
        "image_size": image_size,
    }


def baseline_run(dataset, image_size, epochs, seed, batch_size=BASELINE_BATCH):
    """keras.applications.EfficientNetB0(weights=None) + Adam(1e-3), BatchNorm momentum fitted to the run.

    No augmentation, no schedule, no label smoothing; trained on the same
    training split as our runs (the held-out validation part is unused) and
    scored on test. Every BatchNorm layer's momentum is `bn_momentum_for`
    the run's steps (recorded as "bn_momentum"), so the baseline is scored
    with statistics of its final weights rather than at chance.
    Returns train_accuracy (last epoch), test_top1, wall_s, bn_momentum.
    """
    keras.utils.set_random_seed(seed)
    info = data.dataset_info(dataset)
    steps = max(1, -(-info.splits["train"] // batch_size)) * epochs
    momentum = bn_momentum_for(steps)
    model = keras.applications.EfficientNetB0(
        weights=None, input_shape=(image_size, image_size, 3), classes=info.num_classes
    )
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
    row = fit_and_score(model, dataset, image_size, epochs, seed, batch_size)
    return dict(row, bn_momentum=momentum)


def small_cnn(image_size, classes):
    """The small convnet of a Keras tutorial: two conv + max-pool stages, dropout, softmax."""
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


def small_cnn_run(dataset, image_size, epochs, seed, batch_size=BASELINE_BATCH):
    """`small_cnn` + Adam(1e-3) at the source resolution, as `baseline_run` trains and scores."""
    keras.utils.set_random_seed(seed)
    info = data.dataset_info(dataset)
    model = small_cnn(image_size, info.num_classes)
    return fit_and_score(model, dataset, image_size, epochs, seed, batch_size)
