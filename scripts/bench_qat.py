r"""Benchmark: float vs post-training int8 vs QAT int8 (top-1, size, latency).

Example (the figures in docs/qat.md):
  python scripts/bench_qat.py --variants=b0,lite0 --image_size=64 \
      --train_epochs=30 --qat_epochs=2 --model_dir=runs/bench_qat \
      --output_json=runs/bench_qat/results.json

The float models train with the default recipe (as `keras-effnet train` does) into
--model_dir/<variant>_<image_size>; finished runs there are reused.
"""

from absl import app, flags

_VARIANTS = flags.DEFINE_list("variants", ["b0", "lite0"], "Variants to compare.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Input resolution.")
_DATASET = flags.DEFINE_string("dataset", "digits", "Dataset name or folder.")
_MODEL_DIR = flags.DEFINE_string(
    "model_dir", "runs/bench_qat", "Float training runs (finished ones are reused)."
)
_TRAIN_EPOCHS = flags.DEFINE_integer("train_epochs", 30, "Float epochs.")
_QAT_EPOCHS = flags.DEFINE_integer("qat_epochs", 2, "QAT epochs.")
_QAT_LR = flags.DEFINE_float("qat_learning_rate", 3e-5, "QAT learning rate.")
_THREADS = flags.DEFINE_integer("threads", 2, "LiteRT threads.")
_LATENCY_RUNS = flags.DEFINE_integer("latency_runs", 50, "Timed runs.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Results JSON path.")


def main(argv):
    del argv
    from keras_effnet.bench import qat as bench  # pylint: disable=import-outside-toplevel
    from keras_effnet.export import ExportOptions  # pylint: disable=import-outside-toplevel

    options = ExportOptions(
        dataset=_DATASET.value,
        qat_epochs=_QAT_EPOCHS.value,
        learning_rate=_QAT_LR.value,
        threads=_THREADS.value,
        latency_runs=_LATENCY_RUNS.value,
    )
    bench.run(
        _VARIANTS.value,
        _IMAGE_SIZE.value,
        _MODEL_DIR.value,
        options,
        train_epochs=_TRAIN_EPOCHS.value,
        output_json=_OUTPUT_JSON.value,
    )


if __name__ == "__main__":
    app.run(main)
