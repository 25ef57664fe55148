"""The default recipe against two baselines and a sweep on real datasets, several seeds.

    python scripts/bench_training.py --models=lite0 \
        --sweep="image_size=32 augment=none stem_strides=1 epochs=12" \
        --sweep="image_size=64 augment=shift"      # docs/training.md has the full sweep
    python scripts/bench_training.py --datasets=photos --seeds=1 --epochs=5
    python scripts/bench_training.py --progressive --datasets=photos,fashion --models=b0 \
        --image_size=64 --patch_size=64 --seeds=1          # progressive learning off vs on

For each dataset (built offline by keras_effnet.training.real_data) and seed it
trains Lite0 and B0 with every training flag at its default (the epochs too:
24 for 1,350 images), and two baselines for the same epochs on the same
training split:
keras.applications.EfficientNetB0(weights=None) + Adam(1e-3), batch 64, no
augmentation, its BatchNorm momentum fitted to the run's steps (recorded), and
the small convnet of a Keras tutorial + Adam(1e-3) at the source resolution.
Each --sweep setting runs at seed 0; the best on validation then runs for
every seed. It prints mean and spread (max - min over seeds) of test top-1,
train and validation accuracy and wall time. Results are kept per run in
--output_dir/results.json (re-running skips finished runs) and the table in
--output_dir/table.md.

With --progressive it trains each of --models on each dataset and seed with
--progressive=off and =on instead (every other flag at its default) and writes
the wall time (training + validation) to a common validation accuracy:
--output_dir/progressive.json, progressive.md and progressive.png (validation
accuracy against seconds).
"""

from absl import app, flags

from keras_effnet import _quiet_import

# Before the rest: TensorFlow starts without its native INFO lines.
_quiet_import.import_backend_quietly()

_DATASETS = flags.DEFINE_list(
    "datasets", ["mnist5k", "fashion", "photos"], "Datasets to build and train."
)
_MODELS = flags.DEFINE_list(
    "models", ["lite0", "b0"], "Our variants, trained with the default recipe."
)
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per (dataset, method).")
_EPOCHS = flags.DEFINE_integer(
    "epochs",
    0,
    "Epochs for every method; 0 = auto: ours as `keras-effnet train` resolves them "
    "(at least 500 steps), the baselines the same number.",
)
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size",
    0,
    "Training and test resolution; 0 = auto (the source side, see --help of train).",
)
_TRAIN_PER_CLASS = flags.DEFINE_integer(
    "train_per_class", 150, "Training images per class (10 % held out)."
)
_TEST_PER_CLASS = flags.DEFINE_integer("test_per_class", 100, "Test images per class.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "runs/bench_training", "Datasets, runs and results."
)
_TRANSFER = flags.DEFINE_list(
    "transfer",
    [],
    "SOURCE,TARGET: instead of the comparison, train on SOURCE (--train_per_class "
    "images per class), then TARGET (--transfer_per_class) from scratch vs fine-tuned, --seeds seeds.",
)
_TRANSFER_PER_CLASS = flags.DEFINE_integer(
    "transfer_per_class", 50, "Target training images per class."
)
_PROGRESSIVE = flags.DEFINE_bool(
    "progressive",
    False,
    "Instead of the comparison: each of --models with progressive learning off and on.",
)
_TARGET_ACCURACY = flags.DEFINE_float(
    "target_accuracy",
    0.0,
    "With --progressive: the validation accuracy to time; 0 = the highest "
    "whole percent every run of a (dataset, model) reached.",
)
_SWEEP = flags.DEFINE_multi_string(
    "sweep",
    [],
    'A setting of the first of --models to try at seed 0, as train flags: "augment=shift '
    'epochs=24". Repeat the flag; the setting with the best validation accuracy then runs '
    "for every seed (sweep_best).",
)
_PATCH_SIZE = flags.DEFINE_integer(
    "patch_size", 32, "Side of the photo patches (the digit sets are 28 px)."
)


def main(argv):
    del argv
    from keras_effnet.bench import training as bench  # pylint: disable=import-outside-toplevel

    if _TRANSFER.value and len(_TRANSFER.value) != 2:
        raise app.UsageError(
            f"--transfer takes SOURCE,TARGET. Received: --transfer={_TRANSFER.value}"
        )
    bench.run(
        bench.BenchOptions(
            datasets=tuple(_DATASETS.value),
            models=tuple(_MODELS.value),
            seeds=_SEEDS.value,
            epochs=_EPOCHS.value,
            image_size=_IMAGE_SIZE.value,
            train_per_class=_TRAIN_PER_CLASS.value,
            test_per_class=_TEST_PER_CLASS.value,
            output_dir=_OUTPUT_DIR.value,
            transfer=tuple(_TRANSFER.value),
            transfer_per_class=_TRANSFER_PER_CLASS.value,
            progressive=_PROGRESSIVE.value,
            target_accuracy=_TARGET_ACCURACY.value,
            patch_size=_PATCH_SIZE.value,
            sweep=tuple(_SWEEP.value),
        )
    )


if __name__ == "__main__":
    app.run(main)
