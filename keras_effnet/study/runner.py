"""Running study cells: settings shared by the study and the grid search,
cell construction, and a resumable loop with a progress bar.

Every cell runs in its own worker process by default
(``python -m keras_effnet.study.measure``): memory figures need a fresh
process (see `memory`), a crash or out-of-memory kill costs one cell, and no
TensorFlow state leaks from one model to the next.
"""

import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import traceback
from importlib import metadata

from tqdm.auto import tqdm

from keras_effnet.augment_spec import parse_augment
from keras_effnet.config_flags import option
from keras_effnet.export_modes import TFLITE_MODES
from keras_effnet.study import memory, results, specs

TIMEOUT_EXIT = "timed out"
TIMING_STATISTICS = ("min", "median")


def _option(default, help, **kwargs):  # noqa: A002
    # The flags of `keras-effnet study` and `grid-search` (keras_effnet.config_flags).
    return option(default, help, section="measurement", **kwargs)


@dataclasses.dataclass(frozen=True)
class MeasureSettings:
    """How each cell is trained and measured (all of it is part of the cell id).

    Attributes:
        dataset: "digits" (offline default), an image folder or a TFDS name.
        data_dir: TFDS data directory.
        batch_size: training batch size (also of the throughput timing).
        recipe: the training recipe, as `keras-effnet train --recipe`: "auto"
            (the default users get: "scratch", AdamW and cosine) or "paper".
        augment: augmentation, as `keras-effnet train --augment` ("auto":
            `recipe.auto_augment`, e.g. "shift" for images under 64 px).
        epochs: training epochs; None = auto, as `keras-effnet train` picks
            (`recipe.auto_epochs`); 0 = only `budget_seconds` bounds training.
        budget_seconds: training time budget after the first (tracing) step;
            0 = none. With both set, training stops at whichever comes first.
        base_lr: learning rate per the recipe's batch; None = the recipe's.
        label_smoothing: label smoothing of the loss; None = the recipe's (0.1).
        seed: seed of initialization, shuffling and dropout.
        seeds: seeds per model: `seed`, `seed` + 1, ... (tables give the mean
            and half range). Cells run seed by seed, so an interrupted run
            has every model at its first seeds. Not part of a cell's id.
        bn_images: training images for the BN re-estimation before evaluation
            (0 = keep the trained moving averages).
        jit_compile: XLA for training and Keras inference (slower on CPU).
        tflite_modes: LiteRT modes to convert and time ("fp32", "int8", ...).
        threads: LiteRT threads.
        latency_runs: LiteRT timed invocations (median reported).
        timing_iterations, timing_repeats, timing_warmup: Keras timing rounds
            (`keras_effnet.bench.timing.interleaved_throughput`).
        interleaved: after the cells, time all models again in one process in
            alternating rounds (`timing`) and report those figures (robust to
            a changing background load); per-cell figures stay as solo_*.
        interleaved_repeats: rounds of the interleaved pass.
        timing_statistic: "min" (best round) or "median" of the interleaved
            rounds (not part of any key: rounds are stored, so switching
            needs no re-measurement).
        output_dir: where tables, plots, the result store, logs and the
            .tflite files go.
        isolate: run each cell in a fresh worker process (needed for honest
            memory figures); False runs in this process (debugging).
        cell_timeout: seconds before a worker is killed (the cell then fails
            and is retried on the next run).
    """

    dataset: str = _option("digits", "digits, an image folder or a TFDS name.")
    data_dir: str | None = _option(None, "TFDS data directory.")
    batch_size: int = _option(64, "Training batch size.")
    recipe: str = _option(
        "auto", "Training recipe (as keras-effnet train).", choices=("auto", "scratch", "paper")
    )
    augment: str = _option("auto", "Augmentation (as keras-effnet train --augment).")
    epochs: int | None = _option(
        None, "Training epochs (auto: as keras-effnet train; 0: --budget_seconds only)."
    )
    budget_seconds: float = _option(0.0, "Training time budget after tracing (0 = none).")
    base_lr: float | None = _option(None, "Learning rate per the recipe's batch (auto: recipe's).")
    label_smoothing: float | None = _option(None, "Label smoothing (auto: the recipe's).")
    seed: int = _option(0, "Seed of init, shuffling, dropout.")
    seeds: int = _option(1, "Seeds per model: --seed, --seed+1, ... (mean and half range).")
    bn_images: int = _option(
        512, "Training images for BN re-estimation before evaluation (0 = off)."
    )
    jit_compile: bool = _option(False, "XLA for training and Keras inference.")
    tflite_modes: tuple = _option(
        ("fp32", "int8"), "LiteRT modes to convert and time (fp32, fp16, dynamic, int8, int16x8)."
    )
    # `--num_threads`, as in the other commands (issue 21); `--threads` stays an alias.
    threads: int = _option(2, "LiteRT threads.", flag="num_threads", old_names=("threads",))
    latency_runs: int = _option(200, "LiteRT timed runs.")
    timing_iterations: int = _option(3, "Keras latency: calls per timed round.")
    timing_repeats: int = _option(5, "Keras latency: timed rounds (median).")
    timing_warmup: int = _option(2, "Keras latency: warmup calls.")
    interleaved: bool = _option(True, "Re-time all models in one process in alternating rounds.")
    interleaved_repeats: int = _option(15, "Rounds of the interleaved timing (median).")
    timing_statistic: str = _option(
        "min",
        "Statistic over the interleaved rounds (min = best round).",
        choices=TIMING_STATISTICS,
    )
    output_dir: str = _option("study_out", "Output directory.")
    isolate: bool = _option(True, "One fresh worker process per cell (honest memory figures).")
    cell_timeout: float = _option(3600.0, "Seconds per cell.")

    def __post_init__(self):
        for name in (
            "batch_size",
            "threads",
            "latency_runs",
            "timing_iterations",
            "timing_repeats",
            "interleaved_repeats",
            "seeds",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        for name in ("epochs", "bn_images", "timing_warmup", "seed"):
            value = getattr(self, name)
            if name == "epochs" and value is None:  # auto
                continue
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be an int >= 0. Received: {name}={value!r}")
        if self.budget_seconds < 0:
            raise ValueError(
                f"`budget_seconds` must be >= 0. Received: budget_seconds={self.budget_seconds!r}"
            )
        if self.epochs == 0 and not self.budget_seconds:
            raise ValueError(
                "Training needs a budget: set `epochs` or `budget_seconds` > 0. "
                f"Received: epochs={self.epochs}, budget_seconds={self.budget_seconds}"
            )
        if self.recipe not in ("auto", "scratch", "paper"):
            raise ValueError(
                f'`recipe` must be "auto", "scratch" or "paper". Received: recipe={self.recipe!r}'
            )
        parse_augment(self.augment)  # Raises naming the value.
        if self.base_lr is not None and not self.base_lr > 0:
            raise ValueError(f"`base_lr` must be > 0. Received: base_lr={self.base_lr!r}")
        if self.label_smoothing is not None and not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"`label_smoothing` must be in [0, 1). Received: label_smoothing={self.label_smoothing!r}"
            )
        if self.timing_statistic not in ("min", "median"):
            raise ValueError(
                '`timing_statistic` must be "min" or "median". '
                f"Received: timing_statistic={self.timing_statistic!r}"
            )
        object.__setattr__(self, "tflite_modes", tuple(self.tflite_modes))
        for mode in self.tflite_modes:
            if mode not in TFLITE_MODES:
                raise ValueError(
                    f"`tflite_modes` entries must be in {TFLITE_MODES}. "
                    f"Received: tflite_modes={self.tflite_modes!r}"
                )
        if len(set(self.tflite_modes)) != len(self.tflite_modes):
            raise ValueError(f"`tflite_modes` has duplicates. Received: {self.tflite_modes!r}")

    def per_seed(self):
        """These settings once per seed (`seed` .. `seed` + `seeds` - 1)."""
        return [
            dataclasses.replace(self, seed=seed)
            for seed in range(self.seed, self.seed + self.seeds)
        ]


def make_cell(settings, spec, resolution):
    """Returns (cell_id, cell) for one model spec at one resolution."""
    cell = {
        "model": spec,
        "resolution": resolution,
        "dataset": settings.dataset,
        "data_dir": settings.data_dir,
        "batch_size": settings.batch_size,
        "recipe": settings.recipe,
        "augment": settings.augment,
        "epochs": settings.epochs,
        "budget_seconds": float(settings.budget_seconds),
        "base_lr": settings.base_lr,
        "label_smoothing": settings.label_smoothing,
        "seed": settings.seed,
        "bn_images": settings.bn_images,
        "jit_compile": settings.jit_compile,
        "tflite_modes": list(settings.tflite_modes),
        "threads": settings.threads,
        "latency_runs": settings.latency_runs,
        "timing": {
            "iterations": settings.timing_iterations,
            "repeats": settings.timing_repeats,
            "warmup": settings.timing_warmup,
        },
    }
    return results.cell_id(specs.label(spec), resolution, cell), cell


def in_process(cell_id, cell, on_phase=None, artifacts_dir=None):
    """Runs a cell in this process (no fresh-process memory figures)."""
    # Local (also `timing` below): these are worker entry points (`python -m ...`), which
    # import this package first; loaded here at import, runpy would load them twice.
    from keras_effnet.study import measure

    try:
        row = measure.measure_cell(
            cell, cell_id=cell_id, artifacts_dir=artifacts_dir, on_phase=on_phase
        )
    except Exception:
        return {"status": "error", "error": traceback.format_exc()[-4000:], "cell": cell}
    row["memory_method"] = f"{row.get('memory_method')} (in-process)"
    return {"status": "ok", "row": {"cell_id": cell_id, **row}, "cell": cell}


def spawn_worker(module, job, log_path, timeout, on_phase=None):
    """Runs ``python -m <module> JOB.json OUT.json`` and returns OUT's JSON.

    The worker's stderr (TensorFlow logs, tracebacks) goes to `log_path`; its
    stdout carries JSON progress events ({"phase": ...}) for `on_phase`. A
    worker that dies or times out yields {"status": "error", "error": ...}.
    """
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    with tempfile.TemporaryDirectory() as tmp, open(log_path, "w") as log:
        job_path, out_path = os.path.join(tmp, "job.json"), os.path.join(tmp, "out.json")
        with open(job_path, "w") as f:
            json.dump(job, f)
        proc = subprocess.Popen(
            [sys.executable, "-m", module, job_path, out_path],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        killed = []
        timer = threading.Timer(timeout, lambda: (killed.append(1), proc.kill()))
        timer.start()
        try:
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # Converter chatter on stdout.
                if on_phase and isinstance(event, dict) and "phase" in event:
                    on_phase(event["phase"])
            proc.wait()
        finally:
            timer.cancel()
        if os.path.exists(out_path):
            with open(out_path) as f:
                return json.load(f)
    with open(log_path) as f:
        tail = f.read()[-3000:]
    reason = TIMEOUT_EXIT if killed else f"worker exited with code {proc.returncode}"
    return {"status": "error", "error": f"{reason}; log {log_path}:\n{tail}"}


def subprocess_runner(log_dir, timeout=3600.0, artifacts_dir=None):
    """A runner executing each cell in a fresh worker process.

    Logs go to `log_dir/<cell_id>.log`; converted .tflite files (for the
    interleaved timing pass) to `artifacts_dir` when given.
    """

    def run(cell_id, cell, on_phase=None):
        job = {"id": cell_id, "cell": cell, "artifacts_dir": artifacts_dir}
        record = spawn_worker(
            "keras_effnet.study.measure",
            job,
            os.path.join(log_dir, cell_id.replace("/", "_") + ".log"),
            timeout,
            on_phase,
        )
        record["cell"] = cell
        return record

    return run


def run_cells(jobs, store, runner, desc="cells"):
    """Runs the unfinished cells of `jobs` and stores each record as it ends.

    Args:
        jobs: list of (cell_id, cell).
        store: a `results.ResultStore`; finished ids are skipped.
        runner: callable (cell_id, cell, on_phase) -> record dict.
        desc: progress bar label.

    Returns:
        dict with "ran", "skipped" and "failed" (lists of cell ids).
    """
    summary = {"ran": [], "skipped": [], "failed": []}
    bar = tqdm(jobs, desc=desc, unit="cell", file=sys.stderr)
    for key, cell in bar:
        if store.finished(key):
            summary["skipped"].append(key)
            continue
        label = key.split("@")[0]
        bar.set_postfix_str(label)
        record = runner(key, cell, lambda phase, _l=label: bar.set_postfix_str(f"{_l}: {phase}"))
        store.put(key, record)
        if record.get("status") == "ok":
            summary["ran"].append(key)
            row = record["row"]
            bar.write(
                f"{label}: accuracy {row.get('accuracy', float('nan')):.3f}, "
                f"train {row.get('train_images_per_s', float('nan')):.1f} img/s, "
                f"{row.get('cell_seconds', float('nan')):.0f} s",
                file=sys.stderr,
            )
        else:
            summary["failed"].append(key)
            bar.write(f"{label}: FAILED\n{record.get('error', '')[-1500:]}", file=sys.stderr)
    bar.close()
    return summary


def default_runner(settings):
    artifacts = os.path.join(settings.output_dir, "tflite")
    if settings.isolate:
        return subprocess_runner(
            os.path.join(settings.output_dir, "logs"), settings.cell_timeout, artifacts
        )
    return lambda cell_id, cell, on_phase=None: in_process(cell_id, cell, on_phase, artifacts)


def run_interleaved(settings, jobs, rows, store, worker=None):
    """The `timing` pass over one cell per model of `rows` (skipped when stored); returns new rows.

    Args:
        worker: callable(job, on_phase) -> record; default: a fresh process.
    """
    from keras_effnet.study import timing  # Local: a worker entry point (see `in_process`).

    if not settings.interleaved or not rows:
        return rows
    # One cell per model (its first seed's) is timed; `timing.apply` gives its
    # figures to every seed of the model.
    first = {}
    for row in rows:
        first.setdefault(row["model"], row)
    key, job = timing.make_job(
        jobs, list(first.values()), settings, os.path.join(settings.output_dir, "tflite")
    )
    if not store.finished(key):
        log = os.path.join(settings.output_dir, "logs", key + ".log")
        with tqdm(total=1, desc="interleaved timing", file=sys.stderr) as bar:
            on_phase = bar.set_postfix_str
            if worker is None:
                record = spawn_worker(
                    "keras_effnet.study.timing", job, log, settings.cell_timeout, on_phase
                )
            else:
                record = worker(job, on_phase)
            bar.update(1)
        store.put(key, dict(record, job=job))
        if record.get("status") != "ok":
            bar.write(
                f"interleaved timing FAILED (per-cell figures kept):\n"
                f"{record.get('error', '')[-1500:]}",
                file=sys.stderr,
            )
    return timing.apply(rows, store.records[key], settings.timing_statistic)


def machine_info():
    """Versions and CPU facts recorded with the results."""
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": memory.load_average(),
    }
    try:
        for package in ("tensorflow", "keras", "ai-edge-litert"):
            info[package] = metadata.version(package)
    except Exception:  # Metadata is context, never a reason to fail.
        pass
    return info
