"""`ExportOptions`: every setting of an export, the one set of defaults.

Every export path takes it whole (`entry.export`, `pipeline.export_tflite`,
`quant.prune.export_pruned`, `quant.qat.export_qat` and the fine-tuning they
run), so a default lives here only (issue 22). Its own module: `entry` imports
the pipeline, which needs the options too. Field names are the contract of the
command-line flags generated from it; do not rename them.
"""

import dataclasses


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
        num_calibration: representative images from the train split (post-training
            calibration; for "qat" the images that start the quantizer ranges).
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


def resolve(options) -> ExportOptions:
    """`options` itself, or the defaults for None; anything else is a ValueError."""
    if options is None:
        return ExportOptions()
    if not isinstance(options, ExportOptions):
        raise ValueError(f"options: expected ExportOptions, got {type(options).__name__}")
    return options
