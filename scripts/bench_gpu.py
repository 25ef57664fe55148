r"""The GPU benchmark (issue 24) in one budgeted call: `keras_effnet.bench.gpu`.

On the GPU machine (JAX with CUDA, PyTorch and timm; no TensorFlow), from the
repository root:

    PYTHONPATH=. python scripts/bench_gpu.py --output_dir=/tmp/gpu --time_budget_s=420

CPU dry run, every section at tiny sizes (about a minute on 2 cores):

    python scripts/bench_gpu.py --output_dir=/tmp/gpu_dry --tiny

Writes results.json, results.csv and table.md into --output_dir after every
item, prints one line per measurement and the table at the end.
"""

import dataclasses
import os

# JAX only: the GPU machine has no TensorFlow, and nothing here may import it.
os.environ["KERAS_BACKEND"] = "jax"

from absl import app, flags  # noqa: E402

from keras_effnet.bench.gpu import GpuBenchConfig, run_gpu_bench  # noqa: E402


def _define(config_class):
    """One flag per config field: type from the default, help from the field metadata."""
    holders = {}
    for field in dataclasses.fields(config_class):
        name, default, text = field.name, field.default, field.metadata["help"]
        if isinstance(default, bool):
            holders[name] = flags.DEFINE_bool(name, default, text)
        elif isinstance(default, int):
            holders[name] = flags.DEFINE_integer(name, default, text)
        elif isinstance(default, float):
            holders[name] = flags.DEFINE_float(name, default, text)
        elif isinstance(default, tuple):
            holders[name] = flags.DEFINE_list(name, list(default), text)
        else:
            holders[name] = flags.DEFINE_string(name, default, text)
    return holders


_FLAGS = _define(GpuBenchConfig)  # --output_dir is checked by the library (a usage error)


def main(argv):
    del argv
    values = {
        name: tuple(h.value) if isinstance(h.value, list) else h.value for name, h in _FLAGS.items()
    }
    try:
        run_gpu_bench(GpuBenchConfig(**values))
    except ValueError as err:
        raise app.UsageError(str(err)) from err


if __name__ == "__main__":
    app.run(main)
