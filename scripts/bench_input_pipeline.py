"""Measures end-to-end training throughput against the bare model step.

    python scripts/bench_input_pipeline.py --model=lite0 --image_size=64 --batch_size=32
    python scripts/bench_input_pipeline.py --switches   # float32 / bf16 / fp16 / XLA

Prints a table and, with --output_json, writes the figures.
"""

from absl import app, flags

from keras_effnet import config_flags
from keras_effnet.training import config as config_lib
from keras_effnet.training.config import ExperimentConfig

# The train flags the benchmark uses, with its defaults (keras_effnet/training/sections/).
_CONFIG = config_flags.define(
    ExperimentConfig,
    only=(
        "model",
        "dataset",
        "data_dir",
        "image_size",
        "batch_size",
        "augment",
        "strategy",
        "precision",
    ),
    defaults={"image_size": 64, "batch_size": 32, "augment": "crop,flip"},
)
_STEPS = flags.DEFINE_integer("steps", 40, "Timed steps per measurement.")
_SWITCHES = flags.DEFINE_bool("switches", False, "Benchmark precision / XLA switches instead.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", "", "Write the results here.")


def main(argv):
    del argv
    from keras_effnet.bench import input_pipeline as bench

    try:
        config = _CONFIG.config().replace(run={"model_dir": "unused"})
        if _SWITCHES.value:
            results = bench.benchmark_switches(config, steps=_STEPS.value)
            for r in results:
                print(
                    f"{r['precision']:<16} jit_compile={r['jit_compile']!s:<6} {r['images_per_sec']:8.1f} img/s"
                )
        else:
            results = bench.benchmark_input_pipeline(config, steps=_STEPS.value)
            print(
                f"{results['model']} {results['image_size']}px global batch {results['global_batch_size']} "
                f"augment={results['augment']}: bare step {results['bare_images_per_sec']:.1f} img/s, "
                f"end-to-end {results['end_to_end_images_per_sec']:.1f} img/s, ratio {results['ratio']:.3f} "
                f"(pipeline alone {results['pipeline_only_images_per_sec']:.0f} img/s)"
            )
    except config_lib.ConfigError as e:
        raise SystemExit(f"bench_input_pipeline.py: error: {e}") from None
    if _OUTPUT_JSON.value:
        from keras_effnet import io

        io.write_json_atomic(_OUTPUT_JSON.value, results)


if __name__ == "__main__":
    app.run(main)
