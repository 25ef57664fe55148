"""The PyTorch anchor of the GPU benchmark: timm's EfficientNet-B0 on the same card.

The setting timm's own training script uses on a GPU (timm `train.py`:
`--channels-last`, `--amp --amp-dtype bfloat16`, cudnn.benchmark), with a
plain SGD step, so the figure is the ecosystem's reference speed for B0, not
a tuned record. torch and timm are imported here only, when the anchor runs.

`timm_in_subprocess` runs each measurement in a fresh process
(`python -m keras_effnet.bench.gpu_torch`): PyTorch's CUDA context, libraries
and allocator then never share a process with JAX's, and a crash or a
torch.compile that overruns (timeout) costs that item only.
"""

import dataclasses
import json
import os
import subprocess
import sys
import time

import keras_effnet
from keras_effnet.bench.gpu_results import Throughput, images_per_s, timed_rounds

_RESULT = "TIMM_RESULT "


class _TorchStep:
    """One training (SGD) or inference step of `model` under bf16 autocast, synchronized."""

    def __init__(self, torch, model, mode, batch_size, resolution, device):
        self.torch, self.model, self.mode, self.device = torch, model, mode, device
        self.batch_size = batch_size
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(batch_size, 3, resolution, resolution, generator=generator)
        self.images = images.to(device).contiguous(memory_format=torch.channels_last)
        self.labels = torch.randint(0, 1000, (batch_size,), generator=generator).to(device)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def _sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def __call__(self):
        torch = self.torch
        if self.mode == "train":
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                logits = self.model(self.images)
            loss = torch.nn.functional.cross_entropy(logits.float(), self.labels)
            loss.backward()
            self.optimizer.step()
        else:
            with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16):
                self.model(self.images)
        self._sync()


def timm_throughput(
    *,
    model_name,
    mode,
    batch_size,
    resolution,
    timing,
    compiled=False,
    section="timm_anchor",
):
    """Images/s of timm `model_name` (random init) in PyTorch, channels-last, bf16 autocast.

    Args:
        model_name: a timm architecture ("efficientnet_b0").
        mode: "train" (SGD step) or "inference" (eval mode, inference_mode).
        batch_size: images per step.
        resolution: input side.
        timing: dict of `timed_rounds` keyword arguments (warmup, rounds, iterations).
        compiled: wrap the model in `torch.compile` (its compilation happens in
            the first warm-up call and is reported as compile_s).

    Returns:
        a `Throughput` (compile_s: the first call, i.e. cudnn autotuning or
        torch.compile; compiled_peak_bytes: `torch.cuda.max_memory_allocated`).
    """
    import timm
    import torch

    if mode not in ("train", "inference"):
        raise ValueError(f'`mode` must be "train" or "inference". Received: mode={mode!r}')
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    model = timm.create_model(model_name, pretrained=False).to(device)
    model = model.to(memory_format=torch.channels_last)
    model.train(mode == "train")
    if compiled:
        model = torch.compile(model)
    step = _TorchStep(torch, model, mode, batch_size, resolution, device)
    start = time.perf_counter()
    step()
    compile_s = time.perf_counter() - start
    seconds = timed_rounds({"timm": step}, **timing)["timm"]
    median, per_round = images_per_s(batch_size, seconds)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    del step, model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return Throughput(
        section=section,
        model=model_name,
        implementation="timm (PyTorch)" + (" + torch.compile" if compiled else ""),
        mode=mode,
        precision="bf16 autocast, channels_last",
        resolution=resolution,
        batch_size=batch_size,
        images_per_s=median,
        round_images_per_s=per_round,
        compile_s=compile_s,
        compiled_peak_bytes=peak,
    )


def timm_in_subprocess(timeout, measurements, **common):
    """`timm_throughput` for each of `measurements`, in one fresh Python process.

    Args:
        timeout: seconds; the worker is killed after that and what it had
            finished is still returned.
        measurements: list of dicts of `timm_throughput` arguments (mode,
            batch_size, compiled), run in order.
        **common: the other `timm_throughput` arguments.

    Returns:
        list with a `Throughput` or an error string per measurement, None for
        those not reached.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(keras_effnet.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    jobs = [dict(common, **m) for m in measurements]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "keras_effnet.bench.gpu_torch", json.dumps(jobs)],
            env=dict(os.environ, PYTHONPATH=path, KERAS_BACKEND="jax"),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        stdout, stderr, status = proc.stdout, proc.stderr, f"exited with {proc.returncode}"
    except subprocess.TimeoutExpired as err:
        stdout, stderr = _text(err.stdout), _text(err.stderr)
        status = f"killed after {timeout:.0f} s"
    out = [None] * len(jobs)
    for line in stdout.splitlines():
        if line.startswith(_RESULT):
            index, fields = json.loads(line[len(_RESULT) :])
            if isinstance(fields, str):
                out[index] = fields
            else:
                fields["round_images_per_s"] = tuple(fields["round_images_per_s"])
                out[index] = Throughput(**fields)
    return [
        f"timm worker {status} before this measurement: {stderr[-1500:]}" if r is None else r
        for r in out
    ]


def _text(value):
    return value.decode("utf8", "replace") if isinstance(value, bytes) else (value or "")


def _worker(jobs):
    """Runs each job, printing one result line (a Throughput or the error) as each ends."""
    for index, job in enumerate(jobs):
        try:
            result = dataclasses.asdict(timm_throughput(**job))
        except Exception as err:  # reported to the parent, which records it
            result = f"{type(err).__name__}: {str(err)[:500]}"
        print(_RESULT + json.dumps([index, result]), flush=True)


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
