"""Records of the GPU benchmark (`gpu.py`), the timing loop, the FLOPs fit and the files.

Framework-free (numpy and the standard library), so the JAX and PyTorch halves
of the benchmark share it. Every record is a frozen dataclass; the run's JSON
is `dataclasses.asdict` of `GpuBenchResult`, the CSV is its measurement lines
(one per printed line) and table.md is the human summary.
"""

import csv
import dataclasses
import io
import json
import os
import statistics
import time

import numpy as np

from keras_effnet.io import write_json_atomic, write_text_atomic


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One printed line: a value of a subject in a section."""

    section: str
    subject: str
    metric: str
    value: float | None
    unit: str
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class Correctness:
    """Max |difference| of our logits from a reference on the same inputs and weights.

    Attributes:
        precision: JAX matmul/conv precision of our model: "highest" (full fp32,
            TF32 off) or "default" (XLA's default: TF32 on NVIDIA Ampere and
            newer, full fp32 on CPU).
        reference_precision: the same for the reference.
        deterministic: two runs of ours on the device gave bit-identical outputs.
    """

    model: str
    reference: str
    precision: str
    reference_precision: str
    resolution: int
    batch_size: int
    max_abs_diff: float
    max_abs_output: float
    deterministic: bool


@dataclasses.dataclass(frozen=True)
class Throughput:
    """Images/s of one jit-compiled step, median of timed rounds after warm-up.

    Attributes:
        compiled_peak_bytes: device memory XLA planned for the step (arguments
            + outputs + temporaries - donated aliases), or PyTorch's
            `max_memory_allocated` during the step's timing; None when unknown.
        process_peak_bytes: the device allocator's peak since the process
            started (cannot be reset in JAX), after this step ran.
        kernels: fusions and library calls in the optimized XLA program (about
            the kernels one step launches); None where not counted.
    """

    section: str
    model: str
    implementation: str
    mode: str
    precision: str
    resolution: int
    batch_size: int
    images_per_s: float
    round_images_per_s: tuple
    compile_s: float
    compiled_peak_bytes: int | None = None
    process_peak_bytes: int | None = None
    kernels: int | None = None


@dataclasses.dataclass(frozen=True)
class Ratio:
    """ours / reference images/s, both timed in the same interleaved rounds."""

    section: str
    mode: str
    precision: str
    batch_size: int
    ours: str
    reference: str
    ratio: float


@dataclasses.dataclass(frozen=True)
class FamilyRow:
    """One model of the family at its native resolution (bf16 steps)."""

    model: str
    resolution: int
    params: int
    flops: int
    train_batch: int
    train_images_per_s: float | None
    train_peak_bytes: int | None
    inference_batch: int
    inference_images_per_s: float | None
    inference_peak_bytes: int | None
    process_peak_bytes: int | None


@dataclasses.dataclass(frozen=True)
class Exponent:
    """Least-squares k of time per image ∝ FLOPs^k (log-log), over `models`."""

    scope: str
    metric: str
    k: float | None
    models: tuple
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Event:
    """A skipped item (budget) or a failed one (its exception), with the reason."""

    section: str
    item: str
    kind: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Environment:
    date: str
    device_kind: str
    platform: str
    python: str
    versions: dict


@dataclasses.dataclass
class GpuBenchResult:
    """Everything one run recorded, filled section by section."""

    config: dict
    environment: Environment
    correctness: list = dataclasses.field(default_factory=list)
    throughput: list = dataclasses.field(default_factory=list)
    ratios: list = dataclasses.field(default_factory=list)
    family: list = dataclasses.field(default_factory=list)
    exponents: list = dataclasses.field(default_factory=list)
    events: list = dataclasses.field(default_factory=list)
    section_seconds: dict = dataclasses.field(default_factory=dict)
    measurements: list = dataclasses.field(default_factory=list)

    def record(self, section, subject, metric, value, unit, detail=""):
        """Appends a measurement and prints its line at once (flushed)."""
        line = Measurement(section, subject, metric, value, unit, detail)
        self.measurements.append(line)
        shown = "n/a" if value is None else f"{value:.6g}"
        print(f"[{section}] {subject}: {metric} = {shown} {unit} {detail}".rstrip(), flush=True)


def timed_rounds(steps, *, warmup, rounds, iterations):
    """Seconds per call of each step, timed in interleaved rounds (A, B, A, B, ...).

    Args:
        steps: dict name -> callable that runs one step and waits for it
            (the callable synchronizes: `block_until_ready`, `cuda.synchronize`).
        warmup: untimed calls per step first.
        rounds: timed rounds.
        iterations: calls per step and round.

    Returns:
        dict name -> list (one per round) of mean seconds per call.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    out = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(iterations):
                step()
            out[name].append((time.perf_counter() - start) / iterations)
    return out


def images_per_s(batch_size, seconds):
    """(median images/s, per-round images/s) from per-round seconds per call."""
    per_round = tuple(batch_size / s for s in seconds)
    return statistics.median(per_round), per_round


def power_law_exponent(flops, times):
    """k of time ∝ FLOPs^k by least squares on logs (None below 3 distinct FLOPs).

    The same fit as the CPU study's figures (`study.plots.power_law_exponent`),
    repeated here because that module needs matplotlib.
    """
    pairs = [(f, t) for f, t in zip(flops, times) if f and t and f > 0 and t > 0]
    if len({f for f, _ in pairs}) < 3:
        return None
    return float(np.polyfit(np.log([f for f, _ in pairs]), np.log([t for _, t in pairs]), 1)[0])


# The CPU study's columns: training ms per image (batch 32) and Keras batch-1 latency.
_CPU_METRICS = {"train": "train_ms_per_image", "inference": "keras_latency_ms"}


def cpu_study_exponents(paths):
    """The CPU study's k (docs/study.md "Do FLOPs predict time?") from its results files.

    Args:
        paths: study_results.json files (docs/study*, written by
            `keras-effnet study`); missing files are skipped.

    Returns:
        list of `Exponent`, for all rows and for EfficientNet rows only.
    """
    out = []
    for path in paths:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf8") as f:
            rows = json.load(f)["rows"]
        subsets = {
            "all models": rows,
            "EfficientNets": [r for r in rows if r["family"].startswith("efficientnet")],
        }
        for label, subset in subsets.items():
            for metric, column in _CPU_METRICS.items():
                out.append(
                    Exponent(
                        scope=f"CPU 2 cores, {path} ({label})",
                        metric=metric,
                        k=power_law_exponent(
                            [r["flops"] for r in subset], [r.get(column) for r in subset]
                        ),
                        models=tuple(f"{r['model']}@{r['resolution']}" for r in subset),
                        note=f"column {column}",
                    )
                )
    return out


def _gib(value):
    return "" if value is None else f"{value / 2**30:.2f}"


def _num(value, digits=1):
    return "" if value is None else f"{value:.{digits}f}"


def markdown_table(result):
    """The human summary: environment, correctness, B0 ratios, anchor, family, k."""
    env = result.environment
    lines = [
        f"# GPU benchmark ({env.date}, {env.device_kind}, {env.platform})",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(env.versions.items())),
        "",
        "## Correctness (max |diff| of logits)",
        "",
        "| model | reference | precision (ours / ref) | res | batch | max abs diff | max abs output | deterministic |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in result.correctness:
        lines.append(
            f"| {c.model} | {c.reference} | {c.precision} / {c.reference_precision} | "
            f"{c.resolution} | {c.batch_size} | {c.max_abs_diff:.3g} | {c.max_abs_output:.3g} | "
            f"{c.deterministic} |"
        )
    lines += [
        "",
        "## Throughput (images/s, median of rounds)",
        "",
        "| section | model | implementation | mode | precision | res | batch | img/s | compile s | step peak GiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in result.throughput:
        lines.append(
            f"| {t.section} | {t.model} | {t.implementation} | {t.mode} | {t.precision} | "
            f"{t.resolution} | {t.batch_size} | {t.images_per_s:.1f} | {t.compile_s:.1f} | "
            f"{_gib(t.compiled_peak_bytes)} |"
        )
    lines += ["", "## Ratios (ours / reference, same rounds)", ""]
    lines += [
        "| section | mode | precision | batch | ours / reference | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in result.ratios:
        lines.append(
            f"| {r.section} | {r.mode} | {r.precision} | {r.batch_size} | "
            f"{r.ours} / {r.reference} | {r.ratio:.3f} |"
        )
    lines += [
        "",
        "## The family at native resolution (mixed_bfloat16)",
        "",
        "| model | res | params | GFLOPs | train batch | train img/s | train step GiB | "
        "infer batch | infer img/s | infer step GiB | process peak GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in result.family:
        lines.append(
            f"| {f.model} | {f.resolution} | {f.params:,} | {f.flops / 1e9:.2f} | "
            f"{f.train_batch} | {_num(f.train_images_per_s)} | {_gib(f.train_peak_bytes)} | "
            f"{f.inference_batch} | {_num(f.inference_images_per_s)} | "
            f"{_gib(f.inference_peak_bytes)} | {_gib(f.process_peak_bytes)} |"
        )
    lines += ["", "## time per image ∝ FLOPs^k", "", "| scope | metric | k | models |"]
    lines.append("|---|---|---|---|")
    for e in result.exponents:
        k = "" if e.k is None else f"{e.k:.2f}"
        lines.append(f"| {e.scope} | {e.metric} | {k} | {', '.join(e.models)} |")
    if result.events:
        lines += ["", "## Skipped or failed", "", "| section | item | kind | reason |"]
        lines.append("|---|---|---|---|")
        lines += [f"| {e.section} | {e.item} | {e.kind} | {e.reason} |" for e in result.events]
    seconds = ", ".join(f"{k} {v:.0f} s" for k, v in result.section_seconds.items())
    lines += ["", f"Section wall times: {seconds}", ""]
    return "\n".join(lines)


def write_outputs(result, output_dir):
    """Writes results.json, results.csv and table.md into `output_dir`, each atomically."""
    write_json_atomic(os.path.join(output_dir, "results.json"), dataclasses.asdict(result))
    buffer = io.StringIO()
    fields = [f.name for f in dataclasses.fields(Measurement)]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for line in result.measurements:
        writer.writerow(dataclasses.asdict(line))
    write_text_atomic(os.path.join(output_dir, "results.csv"), buffer.getvalue())
    write_text_atomic(os.path.join(output_dir, "table.md"), markdown_table(result))
