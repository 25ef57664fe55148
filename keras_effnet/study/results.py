"""Study results: documented columns, cell ids, the resumable store, tables.

Every measured cell (one model at one setting) becomes one row. The store is
a JSON file {cell_id: record} rewritten atomically after each cell, so an
interrupted run loses at most the cell in progress and a rerun skips the
finished ones. The cell id contains the model label, the resolution and a hash
of every setting that changes the measurement (the whole cell spec), so a
changed setting is a new cell, never a stale hit.
"""

import csv
import hashlib
import io
import json
import os
import sys
import traceback

from keras_effnet.io import write_json_atomic, write_text_atomic

# (name, description). The CSV/JSON tables have exactly these columns, in this
# order, plus the per-TFLite-mode columns of `tflite_columns`.
BASE_COLUMNS = (
    ("cell_id", "unique key: <model>@<resolution>px-<hash of all settings>"),
    ("model", "model label (b0, lite0, resnet50, phi1, a1.20-b1.10-g1.15, ...)"),
    (
        "family",
        "efficientnet, efficientnet-lite, efficientnetv2, compound, compound-lite or the "
        "reference's name (resnet50, mobilenetv3large, mobilenetv3small)",
    ),
    ("phi", "compound coefficient (compound models only)"),
    ("alpha", "depth base (compound models only)"),
    ("beta", "width base (compound models only)"),
    ("gamma", "resolution base (compound models only)"),
    ("width", "width multiplier (EfficientNets)"),
    ("depth", "depth multiplier (EfficientNets)"),
    ("resolution", "input side in pixels used for every measurement of the row"),
    ("dataset", "dataset name"),
    ("classes", "number of classes (size of the classifier)"),
    ("params", "parameters (keras count_params, classifier included)"),
    ("macs", "multiply-accumulates per image (keras_effnet.model_profile)"),
    ("flops", "FLOPs per image = 2*MACs + element-wise ops (model_profile; TF profiler within 1%)"),
    (
        "graph_layers",
        "layers of the flattened Keras graph (MBConv blocks expanded): each is at "
        "least one kernel launch, the per-op overhead FLOPs do not count",
    ),
    (
        "train_images_per_s",
        "training throughput: a compiled train_on_batch on one fixed batch "
        "of `batch_size` (no input pipeline), min or median over interleaved "
        "rounds (see timing_method); per-cell: = fit_images_per_s",
    ),
    ("train_ms_per_image", "1000 / train_images_per_s"),
    (
        "fit_images_per_s",
        "batch_size / median duration of the budgeted model.fit's steps after "
        "the first (prefetched input pipeline), timed alone in the cell",
    ),
    (
        "keras_latency_ms",
        "Keras inference latency at batch 1 (tf.function, training=False), "
        "min or median over interleaved rounds (see timing_method)",
    ),
    (
        "solo_keras_latency_ms",
        "Keras latency timed alone in the cell, median of rounds (interleaved runs only)",
    ),
    (
        "timing_method",
        "interleaved (N models, <statistic> of R rounds): latency and train_* "
        "columns come from one process timing all models in alternating rounds; "
        "per-cell: timed alone (medians)",
    ),
    (
        "infer_peak_delta_mib",
        "peak RSS growth during the batch-1 Keras inference timing, "
        "the first phase of a fresh worker process",
    ),
    (
        "train_peak_delta_mib",
        "peak RSS growth during the budgeted model.fit (tracing, input "
        "pipeline, gradients, optimizer slots, activations at `batch_size`), "
        "the second phase",
    ),
    ("rss_base_mib", "RSS of the worker after importing TF, loading data and building the model"),
    ("memory_method", "vmhwm-reset (phase-local peak) or ru_maxrss (lifetime peak, upper bound)"),
    ("batch_size", "training batch size"),
    ("recipe", "training recipe as resolved by keras-effnet train (scratch or paper)"),
    ("augment", "training augmentation as resolved (none, shift, crop,flip, ...)"),
    ("stem_strides", "EfficientNet stem stride as resolved (empty for the references)"),
    ("epochs", "training epochs as resolved (0 when only a time budget applies)"),
    ("budget_seconds", "training time budget in seconds (0 = none)"),
    ("train_steps", "optimizer steps actually run in the budgeted training"),
    ("train_epochs_done", "train_steps * batch_size / train split size"),
    ("fit_seconds", "wall time of the budgeted model.fit, first-step tracing included"),
    ("first_step_seconds", "wall time of the first training step (mostly tracing)"),
    ("train_loss", "training loss of the last epoch, as trained (label smoothing, dropout on)"),
    ("train_accuracy", "training top-1 of the last epoch, as trained (dropout on)"),
    (
        "accuracy",
        "test top-1 of the Keras model after the budget, BN statistics re-estimated "
        "on training images (precise BN)",
    ),
    ("accuracy_bn_ema", "test top-1 with the BN moving averages as trained (momentum 0.99)"),
    ("seed", "seed of initialization, shuffling and dropout"),
    (
        "load_avg_start",
        "1-minute load average when the cell started (2 cores: > 2 means contention)",
    ),
    ("load_avg_end", "1-minute load average when the cell ended"),
    ("cell_seconds", "wall time of the whole cell"),
    ("finished_at", "UTC time the cell finished"),
)


def tflite_columns(modes):
    """Per-mode LiteRT columns, e.g. for ("fp32", "int8")."""
    columns = []
    for mode in modes:
        columns += [
            (
                f"tflite_{mode}_latency_ms",
                f"LiteRT {mode} latency at batch 1 (ai_edge_litert, "
                "`threads` threads), per round the mean of 10 "
                "invocations, min or median over rounds",
            ),
            (
                f"solo_tflite_{mode}_latency_ms",
                f"LiteRT {mode} latency timed alone in the cell, "
                "median of `latency_runs` (interleaved runs only)",
            ),
            (f"tflite_{mode}_mib", f"{mode} .tflite file size in MiB"),
            (f"tflite_{mode}_ops", f"operators in the {mode} .tflite graph"),
            (f"tflite_{mode}_accuracy", f"test top-1 of the {mode} .tflite"),
        ]
        if mode == "int8":
            columns += [
                (
                    "tflite_int8_plain_val_accuracy",
                    "validation top-1 of plain int8 (all layers "
                    "quantized, the better activation ranges), before any float fallback",
                ),
                (
                    "tflite_int8_ranges",
                    "activation ranges the int8 guard kept: mse (narrowed to minimise "
                    "quantization error) or minmax (calibration's)",
                ),
                (
                    "tflite_int8_float_layers",
                    "layers kept in float by the int8 accuracy guard "
                    "(0 = plain int8 was within max_accuracy_drop)",
                ),
                (
                    "tflite_int8_guard_met",
                    "whether the int8 file is within max_accuracy_drop "
                    "of float on validation (False: fallback missed)",
                ),
            ]
    return tuple(columns)


def columns(modes=(), extra=()):
    """All column (name, description) pairs of a table."""
    return BASE_COLUMNS + tflite_columns(modes) + tuple(extra)


# Columns that vary from seed to seed: `aggregate` reports their mean and half range.
VARYING = (
    "accuracy",
    "accuracy_bn_ema",
    "train_accuracy",
    "train_loss",
    "fit_seconds",
    "cell_seconds",
    "train_ms_per_image",
    "train_images_per_s",
    "keras_latency_ms",
    "train_peak_delta_mib",
)
VARYING_TFLITE = ("latency_ms", "accuracy", "mib")


def summary_columns(modes=()):
    """Columns of the per-model summary (`aggregate`): means, with `_spread` = half range."""
    out = [
        ("model", "model label"),
        ("family", "model family"),
        ("resolution", "input side (px)"),
        ("params", "parameters"),
        ("flops", "FLOPs per image (2 x MACs + element-wise)"),
        ("seeds", "seeds measured (the figures below are means over them)"),
        ("epochs", "training epochs as resolved"),
        ("augment", "training augmentation as resolved"),
        ("accuracy", "test top-1 of the Keras model, mean over seeds"),
        ("accuracy_spread", "half the range of accuracy over seeds (max - min) / 2"),
        ("train_accuracy", "training top-1 of the last epoch, as trained, mean"),
        ("train_ms_per_image", "training ms per image (interleaved timing when run), mean"),
        ("fit_seconds", "measured wall time of the training run, mean over seeds"),
        ("fit_seconds_spread", "half the range of fit_seconds over seeds"),
        ("keras_latency_ms", "Keras latency at batch 1, mean"),
        ("load_avg_start", "1-minute load average when the first seed's cell started"),
    ]
    for mode in modes:
        out += [
            (f"tflite_{mode}_latency_ms", f"LiteRT {mode} latency at batch 1, mean"),
            (f"tflite_{mode}_mib", f"{mode} .tflite size (MiB)"),
            (f"tflite_{mode}_accuracy", f"test top-1 of the {mode} .tflite, mean"),
            (f"tflite_{mode}_accuracy_spread", f"half the range of the {mode} accuracy"),
        ]
        if mode == "int8":
            out += [
                (
                    "tflite_int8_float_layers",
                    "layers the int8 guard kept in float, mean over seeds (0: plain int8 passed)",
                ),
                (
                    "tflite_int8_guard_needed",
                    "seeds (of `seeds`) where the guard kept float layers",
                ),
            ]
    return tuple(out)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def aggregate(rows):
    """One row per model (first-seen order): seed-varying columns as mean and `_spread`.

    `_spread` is half the range over seeds, (max - min) / 2, so a figure reads
    as mean ± spread; with one seed it is 0. Other columns are the first row's
    (params, FLOPs and resolution are the same for every seed).
    """
    groups = {}
    for row in rows:
        groups.setdefault(row["model"], []).append(row)
    out = []
    for group in groups.values():
        summary = dict(group[0], seeds=len(group))
        varying = set(VARYING) | {
            key for key in group[0] if key.startswith("tflite_") and key.endswith(VARYING_TFLITE)
        }
        varying.add("tflite_int8_float_layers")
        for key in varying:
            values = [r.get(key) for r in group if _number(r.get(key))]
            if not values:
                continue
            summary[key] = sum(values) / len(values)
            summary[key + "_spread"] = (max(values) - min(values)) / 2
        layers = [r.get("tflite_int8_float_layers") for r in group]
        if any(v is not None for v in layers):
            summary["tflite_int8_guard_needed"] = sum(1 for v in layers if v)
        out.append(summary)
    return out


def summary_markdown(per_model, modes=()):
    """A markdown table of `aggregate` rows: cost, measured time and accuracy ± spread per model.

    "int8 guard" is the number of layers the guard kept in float (mean over
    seeds) and on how many seeds it had to.
    """

    def pm(row, key, scale=100.0, digits=1):
        value = row.get(key)
        if value is None:
            return "-"
        spread = row.get(f"{key}_spread")
        text = f"{scale * value:.{digits}f}"
        return text + (f" ± {scale * spread:.{digits}f}" if row.get("seeds", 1) > 1 else "")

    def num(value, spec):
        return "-" if value is None else format(value, spec)

    head = ["model", "px", "params (M)", "MFLOPs", "train ms/img", "train s/run", "Keras ms"]
    head += [f"LiteRT {m} ms" for m in modes]
    head += ["train top-1 %", "test top-1 %"] + [f"{m} top-1 %" for m in modes]
    head += ["int8 guard"] if "int8" in modes else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in per_model:
        cells = [
            row["model"],
            str(row["resolution"]),
            num(row["params"] / 1e6, ".2f"),
            num(row["flops"] / 1e6, ".0f"),
            num(row.get("train_ms_per_image"), ".2f"),
            pm(row, "fit_seconds", 1.0, 0),
            num(row.get("keras_latency_ms"), ".2f"),
        ]
        cells += [num(row.get(f"tflite_{m}_latency_ms"), ".2f") for m in modes]
        cells += [pm(row, "train_accuracy"), pm(row, "accuracy")]
        cells += [pm(row, f"tflite_{m}_accuracy") for m in modes]
        if "int8" in modes:
            layers = row.get("tflite_int8_float_layers")
            cells.append(
                "-"
                if layers is None
                else f"{layers:.0f} float layers ({row.get('tflite_int8_guard_needed', 0)}"
                f"/{row.get('seeds', 1)} seeds)"
                if layers
                else "plain int8"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cell_id(label, resolution, cell):
    """Stable key of a cell: readable prefix + hash of the whole canonical spec."""
    canonical = json.dumps(cell, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha1(canonical.encode("utf8")).hexdigest()[:10]
    return f"{label}@{resolution}px-{digest}"


class ResultStore:
    """Finished cells in one JSON file {cell_id: record}, rewritten atomically.

    A record is {"cell": spec, "status": "ok" | "error", "row": {...}} or with
    "error" text. Only "ok" records count as finished: failed cells are retried.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.records = {}
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.records = json.load(f)
            if not isinstance(self.records, dict):
                raise ValueError(f"Result store is not a JSON object. Received: path={self.path!r}")

    def finished(self, key):
        return self.records.get(key, {}).get("status") == "ok"

    def put(self, key, record):
        self.records[key] = record
        write_json_atomic(self.path, self.records)

    def rows(self, keys=None):
        """Rows of finished cells, in `keys` order (default: all, stored order)."""
        keys = self.records if keys is None else keys
        return [self.records[k]["row"] for k in keys if self.finished(k)]


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def write_tables(rows, path_prefix, table_columns, metadata=None):
    """Writes <prefix>.csv and <prefix>.json ({"columns", "rows", "metadata"}).

    Returns:
        (csv_path, json_path).
    """
    names = [name for name, _ in table_columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in names])
    csv_path, json_path = path_prefix + ".csv", path_prefix + ".json"
    write_text_atomic(csv_path, buffer.getvalue())
    write_json_atomic(
        json_path,
        {
            # A list, not a dict: JSON objects are written with sorted keys.
            "columns": [{"name": name, "description": text} for name, text in table_columns],
            "rows": [{name: row.get(name) for name in names} for row in rows],
            "metadata": metadata or {},
        },
    )
    return csv_path, json_path


def columns_markdown(table_columns):
    """A markdown table documenting the columns (for docs/study.md)."""
    lines = ["| column | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {text} |" for name, text in table_columns]
    return "\n".join(lines)


def run_worker(module, compute, argv=None):
    """Entry point of a study worker process: ``python -m <module> JOB.json OUT.json``.

    Reads the job, writes ``{"status": "ok", **compute(job)}`` or, if it
    raises, ``{"status": "error", "error": <traceback>}`` (also printed) to
    OUT atomically: the parent reads the record and keeps going either way.

    Returns:
        The process exit code (0 if ok).
    """
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit(f"usage: python -m {module} JOB.json OUT.json")
    with open(argv[0]) as f:
        job = json.load(f)
    try:
        record = {"status": "ok", **compute(job)}
    except Exception:  # Reported to the parent, which keeps going.
        record = {"status": "error", "error": traceback.format_exc()[-4000:]}
        print(record["error"], file=sys.stderr)
    write_json_atomic(argv[1], record)
    return 0 if record["status"] == "ok" else 1


def exit_worker(code):
    """Ends a worker whose result is on disk, skipping TensorFlow's slow teardown."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # pylint: disable=protected-access
