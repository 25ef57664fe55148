"""The GPU benchmark (issue 24): one budgeted run, highest priority first.

    from keras_effnet.bench import gpu
    result = gpu.run_gpu_bench(gpu.GpuBenchConfig(output_dir="/tmp/gpu", tiny=True))

Sections, in priority order (`SECTIONS`): correctness on the device, our B0
vs keras.applications B0 (same stateless JAX step), timm's B0 in PyTorch as
the ecosystem anchor, the family at native resolution (smallest FLOPs first)
with the fitted k of time ∝ FLOPs^k, and B0 at a smaller batch. An item whose
estimated time exceeds the budget left is skipped and recorded; a failing
item is recorded and the run goes on; the files are rewritten after every
item, so a run cut short still leaves them. Entry point: scripts/bench_gpu.py.

JAX backend only, and no TensorFlow anywhere (the GPU machine has none,
docs/design.md "On a GPU"): KERAS_BACKEND must be "jax" before Keras is first imported.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported (read once)

import dataclasses  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import importlib.metadata  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

import jax  # noqa: E402
import keras  # noqa: E402

import keras_effnet  # noqa: E402
from keras_effnet.bench import gpu_jax, gpu_results  # noqa: E402
from keras_effnet.bench.gpu_results import Environment, Event, GpuBenchResult, Throughput  # noqa: E402
from keras_effnet.bench.gpu_sections import SECTION_FUNCTIONS, SECTIONS  # noqa: E402


def _help(text, **kwargs):
    return dataclasses.field(metadata={"help": text}, **kwargs)


@dataclasses.dataclass(frozen=True)
class GpuBenchConfig:
    """One run of the GPU benchmark (each field is a flag of scripts/bench_gpu.py)."""

    output_dir: str = _help("Directory for results.json, results.csv, table.md.", default="")
    overwrite: bool = _help("Write into a non-empty output_dir.", default=False)
    tiny: bool = _help("CPU dry run: tiny sizes, one round, three family models.", default=False)
    time_budget_s: float = _help(
        "Seconds for the whole run; items that do not fit are skipped.", default=420.0
    )
    resolution: int = _help("Side of the B0 comparisons and the timm anchor.", default=224)
    train_batch: int = _help("Training batch of B0 (the family scales it by FLOPs).", default=256)
    inference_batch: int = _help("Inference batch of B0 (scaled as train_batch).", default=512)
    precisions: tuple = _help(
        "Keras dtype policies of the B0 comparison.", default=("mixed_bfloat16", "float32")
    )
    small_batch_divisor: int = _help("b0_small_batch uses the batches divided by this.", default=4)
    correctness_resolution: int = _help("Side of the correctness check.", default=224)
    correctness_batch: int = _help("Images of the correctness check.", default=8)
    family: tuple = _help(
        "Family models, run in this order (smallest FLOPs first).",
        default=("b0", "lite0", "b1", "v2b0", "b2", "b3", "b4", "v2s", "b5", "b6", "b7"),
    )
    sections: tuple = _help(
        "Sections to run, in priority order (a rerun can skip what the last run measured).",
        default=SECTIONS,
    )
    family_modes: tuple = _help(
        "Family measurements: train, inference or both (training steps compile slowest).",
        default=("train", "inference"),
    )
    family_resolution_scale: float = _help("Family side = native side x this (>= 32).", default=1.0)
    family_min_batch: int = _help("Smallest family batch (big models).", default=8)
    warmup: int = _help("Untimed calls per step.", default=2)
    rounds: int = _help("Timed rounds (median) of the B0 comparisons and timm.", default=5)
    iterations: int = _help("Calls per round of the B0 comparisons and timm.", default=5)
    family_rounds: int = _help("Timed rounds per family model.", default=3)
    family_iterations: int = _help("Calls per round per family model.", default=3)
    timm_model: str = _help("timm architecture of the anchor.", default="efficientnet_b0")
    torch_compile: bool = _help("Also time timm under torch.compile.", default=False)
    torch_compile_estimate_s: float = _help("Budget needed per torch.compile item.", default=150.0)
    compilation_cache_dir: str = _help("JAX persistent compilation cache (reruns).", default="")
    xla_flags: str = _help("Appended to XLA_FLAGS before JAX starts its backend.", default="")
    cpu_study_results: tuple = _help(
        "CPU study results whose k is put beside the GPU's.",
        default=("docs/study_native/study_results.json", "docs/study/study_results.json"),
    )


# The dry run goes through every section with the fewest XLA compilations (on
# 2 CPU cores one B0 training step compiles in 10-20 s): one precision, a
# small-batch section that reuses the B0 steps (divisor 1), Lite0/Lite1 as
# the cheap family members, and XLA's fast-compile settings.
_TINY = {
    "resolution": 32,
    "train_batch": 2,
    "inference_batch": 2,
    "precisions": ("mixed_bfloat16",),
    "small_batch_divisor": 1,
    "correctness_resolution": 64,
    "correctness_batch": 2,
    "family": ("b0", "lite0", "lite1"),
    "family_resolution_scale": 1 / 7,
    "family_min_batch": 1,
    "warmup": 0,
    "rounds": 1,
    "iterations": 1,
    "family_rounds": 1,
    "family_iterations": 1,
    "xla_flags": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
}


def resolve(config):
    """The config as run: `tiny` replaces the sizes with `_TINY`'s."""
    return dataclasses.replace(config, **_TINY) if config.tiny else config


def _versions():
    out = {"python": platform.python_version(), "keras_effnet": keras_effnet.__version__}
    for name in ("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "keras", "numpy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    for name in ("torch", "timm"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    device = gpu_jax.accelerator()
    out["jax_platform_version"] = getattr(device.client, "platform_version", "")
    return out


def _environment():
    device = gpu_jax.accelerator()
    return Environment(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        device_kind=device.device_kind,
        platform=f"{device.platform} x{jax.device_count()}",
        python=platform.python_version(),
        versions=_versions(),
    )


class _Run:
    """The state of one run: config, budget, results, and what earlier items measured."""

    def __init__(self, config):
        self.config = config
        self.start = time.monotonic()
        self.device = gpu_jax.accelerator()
        self.result = GpuBenchResult(config=dataclasses.asdict(config), environment=_environment())
        self.durations = {}
        self.measured = {}  # (model, impl, mode, precision, resolution, batch) -> Throughput

    def left(self):
        return self.config.time_budget_s - (time.monotonic() - self.start)

    def attempt(self, section, item, estimate, fn):
        """Runs `fn()` if `estimate` seconds fit the budget; records a skip or a failure."""
        if estimate > self.left():
            reason = f"needs ~{estimate:.0f} s, {max(0.0, self.left()):.0f} s left"
            self.result.events.append(Event(section, item, "skipped", reason))
            print(f"[{section}] SKIPPED {item}: {reason}", flush=True)
            return None
        start = time.monotonic()
        try:
            return fn()
        except Exception as err:  # one failed item must not lose the others
            traceback.print_exc()
            reason = f"{type(err).__name__}: {str(err)[:300]}"
            self.result.events.append(Event(section, item, "failed", reason))
            print(f"[{section}] FAILED {item}: {reason}", flush=True)
            return None
        finally:
            self.durations[(section, item)] = time.monotonic() - start
            gc.collect()
            gpu_results.write_outputs(self.result, self.config.output_dir)

    def timing(self, family=False):
        c = self.config
        rounds = c.family_rounds if family else c.rounds
        iterations = c.family_iterations if family else c.iterations
        return {"warmup": c.warmup, "rounds": rounds, "iterations": iterations}

    def add_throughput(self, row):
        self.result.throughput.append(row)
        key = (row.model, row.implementation, row.mode, row.precision, row.resolution)
        self.measured[key + (row.batch_size,)] = row
        peak = "" if row.compiled_peak_bytes is None else f"{row.compiled_peak_bytes / 2**30:.2f}"
        self.result.record(
            row.section,
            f"{row.model} [{row.implementation}]",
            f"{row.mode} {row.precision} res {row.resolution} batch {row.batch_size}",
            row.images_per_s,
            "img/s",
            f"(compile {row.compile_s:.1f} s, step peak {peak} GiB, kernels {row.kernels})",
        )

    def time_jax(self, section, models, mode, precision, batch, family=False):
        """Times {implementation: model} in interleaved rounds; returns {impl: Throughput}."""
        steps = {impl: gpu_jax.JaxStep(m, mode, batch, self.device) for impl, m in models.items()}
        seconds = gpu_results.timed_rounds(steps, **self.timing(family))
        out = {}
        for impl, step in steps.items():
            median, per_round = gpu_results.images_per_s(batch, seconds[impl])
            model = models[impl]
            out[impl] = Throughput(
                section=section,
                model=model.name,
                implementation=impl,
                mode=mode,
                precision=precision,
                resolution=int(model.inputs[0].shape[1]),
                batch_size=batch,
                images_per_s=median,
                round_images_per_s=per_round,
                compile_s=step.compile_s,
                compiled_peak_bytes=step.planned_peak_bytes(),
                process_peak_bytes=gpu_jax.process_peak_bytes(self.device),
                kernels=None if family else step.kernel_count(),
            )
            self.add_throughput(out[impl])
        return out

    def section(self, name, fn):
        start = time.monotonic()
        print(f"== {name} ({self.left():.0f} s of budget left)", flush=True)
        fn(self)
        self.result.section_seconds[name] = time.monotonic() - start
        print(f"== {name} done in {self.result.section_seconds[name]:.1f} s", flush=True)
        gpu_results.write_outputs(self.result, self.config.output_dir)

    def last_duration(self, section, default=0.0):
        values = [d for (s, _), d in self.durations.items() if s == section]
        return values[-1] if values else default


def _check_output_dir(config):
    path = config.output_dir
    if not path:
        raise ValueError("`output_dir` is required. Received: output_dir=''")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            f"`output_dir` exists and is not a directory. Received: output_dir={path!r}"
        )
    if os.path.isdir(path) and os.listdir(path) and not config.overwrite:
        raise ValueError(
            f"`output_dir` is not empty; pass overwrite=True (--overwrite) to write into it. "
            f"Received: output_dir={path!r}"
        )
    os.makedirs(path, exist_ok=True)


def run_gpu_bench(config):
    """Runs every section that fits `config.time_budget_s`; returns the `GpuBenchResult`.

    Raises:
        ValueError: not the JAX backend, or an unusable `output_dir`.
    """
    if keras.backend.backend() != "jax":
        raise ValueError(
            "The GPU benchmark runs on the JAX backend: set KERAS_BACKEND=jax before Keras is "
            f"imported. Received: backend={keras.backend.backend()!r}"
        )
    config = resolve(config)
    _check_output_dir(config)
    if config.xla_flags:
        # Read when JAX starts its backend, at the first device query (`_Run`).
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {config.xla_flags}".strip()
    if config.compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", config.compilation_cache_dir)
    run = _Run(config)
    env = run.result.environment
    print(f"GPU benchmark on {env.device_kind} ({env.platform}), {env.date}", flush=True)
    print(f"config: {run.result.config}", flush=True)
    with warnings.catch_warnings():
        # Donation is a no-op on CPU (the tiny dry run); JAX warns each time.
        warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
        for name in SECTIONS:
            if name in config.sections:
                run.section(name, SECTION_FUNCTIONS[name])
    print(gpu_results.markdown_table(run.result), flush=True)
    return run.result
