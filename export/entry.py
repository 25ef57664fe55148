"""One library entry for every export: `export(model, mode, output, options)`.

Post-training modes go through `pipeline.export_tflite`; "qat" through
quantization-aware training (`quant.qat`); `options.prune` first prunes the
model (`quant.prune`), then exports it in `mode` (with "qat": pruning-preserving
QAT). `keras-effnet export` only parses flags into `ExportOptions`.
"""

import dataclasses
import os

from keras_effnet import export_modes, runs
from keras_effnet.export import converter, pipeline
from keras_effnet.export.quant import prune, qat

# The mode `export` adds to `export_modes.MODES`.
QAT = "qat"


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """Every setting of an export; the defaults are the CLI's.

    Attributes:
        dataset, data_dir: calibration (train split), the int8 guard's search
            (validation) and verification (`test_split`) data. None = the
            model's run's (config.json beside a .keras path), else the bundled
            digits for a 10-class model, else an error (`runs.resolve_data`).
        labels: class names (list or one-per-line file) for the metadata;
            None = the run's labels.txt, else the dataset's names.
        io_type: integer modes' input/output dtype (None = the mode's default).
        num_calibration: representative images from the train split.
        test_split, test_limit: held-out verification data.
        threads, latency_runs: LiteRT verification settings.
        dynamic_batch: keep the batch dimension open (post-training modes).
        max_accuracy_drop: int8's guard ("auto" = 1 pt, None = off, or points).
        min_guard_images: int8's guard refuses to judge on fewer validation
            images than this (100); lower it to accept a small split.
        layer_report: int8: the whole per-layer error report in the JSON.
        add_metadata: write MediaPipe/Android metadata.
        qat_epochs, learning_rate, batch_size, strategy: fine-tuning for "qat"
            and pruning (`strategy`: None or a `tf.distribute.Strategy`).
        prune: target sparsity in (0, 1), or None for no pruning.
        prune_epochs: pruning epochs (None = `qat_epochs`).
        prune_schedule: "constant" or "polynomial".
        seed: fine-tuning seed.
        overwrite: replace a non-empty directory, or a path of the other kind
            (file vs directory), at the output (docs/training.md "Output policy").
    """

    dataset: object = None
    data_dir: str = None
    labels: object = None
    io_type: str = None
    num_calibration: int = 200
    test_split: str = "test"
    test_limit: int = None
    threads: int = 2
    latency_runs: int = 50
    dynamic_batch: bool = False
    max_accuracy_drop: object = "auto"
    min_guard_images: int = 100
    layer_report: bool = False
    add_metadata: bool = True
    qat_epochs: int = 2
    learning_rate: float = 3e-5
    batch_size: int = 32
    strategy: object = None
    prune: float = None
    prune_epochs: int = None
    prune_schedule: str = "constant"
    seed: int = 0
    overwrite: bool = False

    def __post_init__(self):
        # Every count is checked here, naming its flag: zero or negative is a mistake unless the
        # field's doc gives it a meaning (latency_runs 0 = no timing, min_guard_images 0 = any).
        for name, low in _LOWER_BOUNDS.items():
            value = getattr(self, name)
            if value is None and name in ("test_limit", "prune_epochs"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"`{name}` must be an int >= {low}"
                    + (" or None" if name in ("test_limit", "prune_epochs") else "")
                    + f". Received: {name}={value!r}"
                )
        if not isinstance(self.learning_rate, (int, float)) or not self.learning_rate > 0:
            raise ValueError(
                f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate!r}"
            )


_LOWER_BOUNDS = {
    "num_calibration": 1,
    "test_limit": 1,
    "threads": 1,
    "latency_runs": 0,
    "qat_epochs": 1,
    "batch_size": 1,
    "prune_epochs": 1,
    "seed": 0,
    "min_guard_images": 0,
}


def export(model, mode, output, options=None):
    """Exports `model` in `mode` to `output`, verified, with metadata.

    Args:
        model: a Keras model or a `.keras` path (the float reference).
        mode: one of `export_modes.MODES` or "qat".
        output: destination path (a directory for "savedmodel").
        options: `ExportOptions` (None = defaults).

    Returns:
        The verification report (also written to `<output>.verify.json`).
    """
    options = options or ExportOptions()
    if not isinstance(options, ExportOptions):
        raise ValueError(f"options: expected ExportOptions, got {type(options).__name__}")
    if mode != QAT:
        export_modes.check_mode(mode)
    model, dataset, data_dir, labels = _resolve_data(model, options)
    common = dict(
        dataset=dataset,
        labels=labels,
        data_dir=data_dir,
        test_split=options.test_split,
        test_limit=options.test_limit,
        threads=options.threads,
        latency_runs=options.latency_runs,
        add_metadata=options.add_metadata,
        overwrite=options.overwrite,
    )
    tuning = dict(
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        strategy=options.strategy,
        seed=options.seed,
    )
    if mode == QAT:
        return qat.export_qat(
            model,
            output,
            epochs=options.qat_epochs,
            prune=options.prune,
            prune_epochs=options.prune_epochs,
            prune_schedule=options.prune_schedule,
            io_type=options.io_type or "uint8",
            num_calibration=options.num_calibration,
            **tuning,
            **common,
        )
    settings = dict(
        io_type=options.io_type,
        num_calibration=options.num_calibration,
        dynamic_batch=options.dynamic_batch,
        max_accuracy_drop=options.max_accuracy_drop,
        min_guard_images=options.min_guard_images,
        layer_report=options.layer_report,
        **common,
    )
    if options.prune is not None:
        return prune.export_pruned(
            model,
            mode,
            output,
            sparsity=options.prune,
            prune_epochs=options.prune_epochs or options.qat_epochs,
            schedule=options.prune_schedule,
            **tuning,
            **settings,
        )
    return pipeline.export_tflite(model, mode, output, **settings)


def _resolve_data(model, options):
    """(Keras model, dataset, data_dir, labels): the options, else the model's run (`runs`)."""
    path = model if isinstance(model, (str, os.PathLike)) else None
    keras_model = converter.load_model(model)
    classes = int(keras_model.outputs[0].shape[-1])
    run = runs.find_run(path)
    dataset, data_dir = options.dataset, options.data_dir
    if dataset is None or isinstance(dataset, str):
        choice = runs.resolve_data(path, classes, dataset, data_dir, run)
        dataset, data_dir = choice.dataset, choice.data_dir
    labels = options.labels
    if labels is None:
        labels = runs.default_labels(run, classes)
    return keras_model, dataset, data_dir, labels
