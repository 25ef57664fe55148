r"""Exports a trained model to SavedModel or TFLite, verified, with metadata.

Examples:
    # Data, labels and image size default to the model's run (config.json beside it):
    keras-effnet export --model_path=runs/b0/best.keras --mode=int8 \
            --output=b0_int8.tflite
    # Quantization-aware training (tensorflow-model-optimization), then int8:
    keras-effnet export --model_path=runs/b0/best.keras --mode=qat \
            --qat_epochs=2 --dataset=digits --output=b0_qat.tflite
    # Magnitude pruning to half sparsity (0.5), alone (any mode) or with --mode=qat:
    keras-effnet export --model_path=runs/b0/best.keras --mode=int8 \
            --prune=0.5 --dataset=digits --output=b0_pruned_int8.tflite

Prints the verification table; the figures go to <output>.verify.json.
"""

from absl import app, flags

from keras_effnet import commands
from keras_effnet.export_modes import ALL_IO_TYPES, CLI_MODES
from keras_effnet.training.sections import STRATEGIES

_MODEL_PATH = flags.DEFINE_string(
    "model_path", None, "(required) Trained .keras model.", required=True
)
_MODE = flags.DEFINE_enum(
    "mode",
    "int8",
    list(CLI_MODES),
    "Export mode (qat: quantization-aware training, then full-integer int8).",
)
_OUTPUT = flags.DEFINE_string(
    "output", None, "(required) .tflite path (a directory for --mode=savedmodel).", required=True
)
_DATASET = flags.DEFINE_string(
    "dataset",
    None,
    "Dataset name or image-folder path: calibration (train split) and verification (test "
    "split) data. Default: the model's run (config.json beside it); digits only for a "
    "10-class model without one.",
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Dataset directory (default: the run's).")
_LABELS = flags.DEFINE_string(
    "labels",
    None,
    "Label file, one class name per line in output order (default: the run's labels.txt, "
    "else the dataset's class names).",
)
_IO_TYPE = flags.DEFINE_enum(
    "io_type",
    None,
    list(ALL_IO_TYPES),
    "Input/output dtype of integer modes (int8 default uint8: raw pixels).",
)
_NUM_CALIBRATION = flags.DEFINE_integer(
    "num_calibration", 200, "Representative images from the train split.", lower_bound=1
)
_NUM_THREADS = flags.DEFINE_integer(
    "num_threads", 2, "LiteRT threads of the verification.", lower_bound=1
)
_LATENCY_RUNS = flags.DEFINE_integer(
    "latency_runs", 50, "Timed runs (0: skip latency).", lower_bound=0
)
_TEST_LIMIT = flags.DEFINE_integer(
    "test_limit", None, "Verify on at most this many images (unset: all).", lower_bound=1
)
_MIN_GUARD_IMAGES = flags.DEFINE_integer(
    "min_guard_images",
    100,
    "int8: the guard refuses to judge on fewer validation images (its verdict would mean "
    "nothing); lower it to accept a small split.",
    lower_bound=0,
)
_DYNAMIC_BATCH = flags.DEFINE_bool(
    "dynamic_batch", False, "Keep the batch dimension open (default 1)."
)
_MAX_ACCURACY_DROP = flags.DEFINE_string(
    "max_accuracy_drop",
    "auto",
    "int8: the largest top-1 loss in points (validation split) the file may have; beyond it the "
    "worst layers stay float, and if that misses nothing is written (exit 2). auto = 1.0; "
    "none = write whatever it scores.",
)
_LAYER_REPORT = flags.DEFINE_bool(
    "layer_report", False, "int8: write the per-layer quantization error report into the JSON."
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace a non-empty directory, or a path of the other kind (file vs directory), at "
    '--output (docs/training.md "Output policy").',
)
_METADATA = flags.DEFINE_bool("metadata", True, "Write MediaPipe/Android metadata.")
_QAT_EPOCHS = flags.DEFINE_integer("qat_epochs", 2, "qat: fine-tuning epochs.", lower_bound=1)
_QAT_LEARNING_RATE = flags.DEFINE_float(
    "qat_learning_rate", 3e-5, "qat and --prune: fine-tuning learning rate (Adam)."
)
_PRUNE = flags.DEFINE_float(
    "prune", None, "Magnitude-prune Conv2D/Dense kernels to this sparsity (0 < s < 1) first."
)
_PRUNE_EPOCHS = flags.DEFINE_integer(
    "prune_epochs", None, "Pruning fine-tuning epochs (default: --qat_epochs).", lower_bound=1
)
_PRUNE_SCHEDULE = flags.DEFINE_enum(
    "prune_schedule", "constant", ["constant", "polynomial"], "Sparsity schedule."
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 32, "qat and --prune: fine-tuning batch size.", lower_bound=1
)
_STRATEGY = flags.DEFINE_enum(
    "strategy",
    None,
    list(STRATEGIES),
    "qat and --prune: distribution strategy of the fine-tuning (as `keras-effnet train`).",
)
# The names before issue 21: the same concept has the same flag in every command.
commands.define_old_name("model", "model_path")
commands.define_old_name("threads", "num_threads")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from keras_effnet.cli import run_main

    run_main(commands.prog(), _export)


def _accuracy_drop(value):
    """--max_accuracy_drop: "auto", "none" or a number of points."""
    text = value.strip().lower()
    if text == "auto":
        return "auto"
    if text == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(
            f'`max_accuracy_drop` must be "auto", "none" or a number of points. '
            f"Received: max_accuracy_drop={value!r}"
        ) from None


def _strategy(name):
    """--strategy: None (the default strategy) or a name for make_strategy."""
    if name is None:
        return None
    from keras_effnet.training.strategy import make_strategy  # pylint: disable=import-outside-toplevel

    return make_strategy(name)


def _export():
    from keras_effnet import export  # pylint: disable=import-outside-toplevel

    options = export.ExportOptions(
        dataset=_DATASET.value,
        data_dir=_DATA_DIR.value,
        labels=_LABELS.value,
        io_type=_IO_TYPE.value,
        num_calibration=_NUM_CALIBRATION.value,
        test_limit=_TEST_LIMIT.value,
        threads=_NUM_THREADS.value,
        latency_runs=_LATENCY_RUNS.value,
        dynamic_batch=_DYNAMIC_BATCH.value,
        max_accuracy_drop=_accuracy_drop(_MAX_ACCURACY_DROP.value),
        min_guard_images=_MIN_GUARD_IMAGES.value,
        layer_report=_LAYER_REPORT.value,
        add_metadata=_METADATA.value,
        qat_epochs=_QAT_EPOCHS.value,
        learning_rate=_QAT_LEARNING_RATE.value,
        batch_size=_BATCH_SIZE.value,
        strategy=_strategy(_STRATEGY.value),
        prune=_PRUNE.value,
        prune_epochs=_PRUNE_EPOCHS.value,
        prune_schedule=_PRUNE_SCHEDULE.value,
        overwrite=_OVERWRITE.value,
    )
    report = export.export(_MODEL_PATH.value, _MODE.value, _OUTPUT.value, options)
    print(export.format_table([report]))
    if report.get("denylist"):
        search = report["search"]
        print(
            f"int8 guard: {len(report['denylist'])} layers kept in float to lose "
            f"{search['accuracy_drop_pt']:.1f} pt on {search.get('split', 'validation')} "
            f"(all-integer: {search['plain_drop_pt']:.1f} pt); details in the report"
        )
    print(f"wrote {report['output']} (report: {export.report_path(_OUTPUT.value)})")
