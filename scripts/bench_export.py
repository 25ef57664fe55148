r"""Benchmarks every export mode: accuracy vs float, size, LiteRT latency.

Example (offline digits; each variant trains with the default recipe, as
`keras-effnet train` does, into --model_dir/<variant>):
  python scripts/bench_export.py --variants=lite0,b0 --train_size=64 \
      --epochs=10 --latency_size=224 --threads=2 --output=bench_export.json

Prints a markdown table (accuracy at --train_size, size and latency of the
same weights at --latency_size) and writes all figures as JSON.
"""

from absl import app, flags

_VARIANTS = flags.DEFINE_list("variants", ["lite0", "b0"], "Variants to train and export.")
_TRAIN_SIZE = flags.DEFINE_integer("train_size", 64, "Training/accuracy resolution.")
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Training epochs on digits.")
_LATENCY_SIZE = flags.DEFINE_integer("latency_size", 224, "Latency resolution.")
_THREADS = flags.DEFINE_integer("threads", 2, "LiteRT threads.")
_LATENCY_RUNS = flags.DEFINE_integer("latency_runs", 50, "Timed runs per model.")
_MAX_ACCURACY_DROP = flags.DEFINE_float(
    "max_accuracy_drop",
    0.5,
    "Also export int8 with the worst layers in float until the "
    "top-1 loss is at most this (points); negative: skip.",
)
_OUTPUT = flags.DEFINE_string("output", "bench_export.json", "JSON results.")
_MODEL_DIR = flags.DEFINE_string(
    "model_dir", "runs/bench_export", "Training runs (one per variant; finished ones are reused)."
)


def main(argv):
    del argv
    from keras_effnet.bench import export as bench  # pylint: disable=import-outside-toplevel

    results = bench.run(
        _VARIANTS.value,
        _MODEL_DIR.value,
        train_size=_TRAIN_SIZE.value,
        epochs=_EPOCHS.value,
        latency_size=_LATENCY_SIZE.value,
        threads=_THREADS.value,
        latency_runs=_LATENCY_RUNS.value,
        max_accuracy_drop=_MAX_ACCURACY_DROP.value if _MAX_ACCURACY_DROP.value >= 0 else None,
        output=_OUTPUT.value,
    )
    print(bench.markdown(results))


if __name__ == "__main__":
    app.run(main)
