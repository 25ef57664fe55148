"""How efficient is EfficientNet? Params, FLOPs, measured time, memory and
accuracy after a fixed training budget, for several models on one dataset.

    python scripts/scaling_study.py                  # b0,b1,b2,lite0,resnet50 @ 64px, 2 epochs, digits
    python scripts/scaling_study.py --models=b0,lite0 --resolution=0 --resolution_scale=0.25
    python scripts/scaling_study.py --models= --phis=0,0.5,1,1.5 --alpha=1.2 --beta=1.1 --gamma=1.15
    python scripts/scaling_study.py --output_dir=docs   # the committed figures

Writes study_results.csv/.json, study_*.png, study_cells.json (resumable:
a rerun skips finished cells) and logs/ to --output_dir.
"""

import dataclasses

from absl import app, flags

from keras_effnet.study import StudyConfig

_D = {f.name: f.default for f in dataclasses.fields(StudyConfig)}

_MODELS = flags.DEFINE_list("models", list(_D["models"]),
                            "Named models: b0..b7, lite0..lite4, resnet50 (keras.applications).")
_PHIS = flags.DEFINE_list("phis", [], "Extra keras_effnet.EfficientNet(phi, ...) models.")
_ALPHA = flags.DEFINE_float("alpha", _D["alpha"], "Depth base for --phis.")
_BETA = flags.DEFINE_float("beta", _D["beta"], "Width base for --phis.")
_GAMMA = flags.DEFINE_float("gamma", _D["gamma"], "Resolution base for --phis.")
_BASE_RESOLUTION = flags.DEFINE_integer("base_resolution", _D["base_resolution"],
                                        "phi=0 resolution for --phis.")
_LITE = flags.DEFINE_bool("lite", _D["lite"], "Build the --phis models as Lite.")
_RESOLUTION = flags.DEFINE_integer("resolution", _D["resolution"],
                                   "Common input side; 0 = native x --resolution_scale.")
_RESOLUTION_SCALE = flags.DEFINE_float("resolution_scale", _D["resolution_scale"],
                                       "Factor on native resolutions when --resolution=0.")
_DATASET = flags.DEFINE_string("dataset", _D["dataset"], "digits, an image folder or a TFDS name.")
_DATA_DIR = flags.DEFINE_string("data_dir", _D["data_dir"], "TFDS data directory.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", _D["batch_size"], "Training batch size.")
_EPOCHS = flags.DEFINE_integer("epochs", _D["epochs"], "Training epochs (0: --budget_seconds only).")
_BUDGET_SECONDS = flags.DEFINE_float("budget_seconds", _D["budget_seconds"],
                                     "Training time budget after tracing (0 = none).")
_BASE_LR = flags.DEFINE_float("base_lr", _D["base_lr"], "RMSProp learning rate per 256 images.")
_LABEL_SMOOTHING = flags.DEFINE_float("label_smoothing", _D["label_smoothing"], "Label smoothing.")
_SEED = flags.DEFINE_integer("seed", _D["seed"], "Seed of init, shuffling, dropout.")
_BN_IMAGES = flags.DEFINE_integer("bn_images", _D["bn_images"],
                                  "Training images for BN re-estimation before evaluation (0 = off).")
_JIT_COMPILE = flags.DEFINE_bool("jit_compile", _D["jit_compile"], "XLA for training and Keras inference.")
_TFLITE_MODES = flags.DEFINE_list("tflite_modes", list(_D["tflite_modes"]),
                                  "LiteRT modes to convert and time (fp32, fp16, dynamic, int8, int16x8).")
_THREADS = flags.DEFINE_integer("threads", _D["threads"], "LiteRT threads.")
_LATENCY_RUNS = flags.DEFINE_integer("latency_runs", _D["latency_runs"], "LiteRT timed runs.")
_TIMING_ITERATIONS = flags.DEFINE_integer("timing_iterations", _D["timing_iterations"],
                                          "Keras latency: calls per timed round.")
_TIMING_REPEATS = flags.DEFINE_integer("timing_repeats", _D["timing_repeats"],
                                       "Keras latency: timed rounds (median).")
_TIMING_WARMUP = flags.DEFINE_integer("timing_warmup", _D["timing_warmup"], "Keras latency: warmup calls.")
_INTERLEAVED = flags.DEFINE_bool("interleaved", _D["interleaved"],
                                 "Re-time all models in one process in alternating rounds.")
_INTERLEAVED_REPEATS = flags.DEFINE_integer("interleaved_repeats", _D["interleaved_repeats"],
                                            "Rounds of the interleaved timing (median).")
_TIMING_STATISTIC = flags.DEFINE_enum("timing_statistic", _D["timing_statistic"], ["min", "median"],
                                      "Statistic over the interleaved rounds (min = best round).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", _D["output_dir"], "Output directory.")
_ISOLATE = flags.DEFINE_bool("isolate", _D["isolate"],
                             "One fresh worker process per cell (honest memory figures).")
_CELL_TIMEOUT = flags.DEFINE_float("cell_timeout", _D["cell_timeout"], "Seconds per cell.")
_PLOTS = flags.DEFINE_bool("plots", _D["plots"], "Write the PNG figures.")


def main(argv):
    del argv
    from keras_effnet.study import format_summary, run_scaling_study

    try:
        config = StudyConfig(
            models=tuple(m for m in _MODELS.value if m), phis=tuple(float(p) for p in _PHIS.value),
            alpha=_ALPHA.value, beta=_BETA.value, gamma=_GAMMA.value,
            base_resolution=_BASE_RESOLUTION.value, lite=_LITE.value,
            resolution=_RESOLUTION.value, resolution_scale=_RESOLUTION_SCALE.value,
            dataset=_DATASET.value, data_dir=_DATA_DIR.value, batch_size=_BATCH_SIZE.value,
            epochs=_EPOCHS.value, budget_seconds=_BUDGET_SECONDS.value, base_lr=_BASE_LR.value,
            label_smoothing=_LABEL_SMOOTHING.value, seed=_SEED.value, bn_images=_BN_IMAGES.value,
            jit_compile=_JIT_COMPILE.value, tflite_modes=tuple(_TFLITE_MODES.value),
            threads=_THREADS.value, latency_runs=_LATENCY_RUNS.value,
            timing_iterations=_TIMING_ITERATIONS.value, timing_repeats=_TIMING_REPEATS.value,
            timing_warmup=_TIMING_WARMUP.value, interleaved=_INTERLEAVED.value,
            interleaved_repeats=_INTERLEAVED_REPEATS.value,
            timing_statistic=_TIMING_STATISTIC.value,
            output_dir=_OUTPUT_DIR.value,
            isolate=_ISOLATE.value, cell_timeout=_CELL_TIMEOUT.value, plots=_PLOTS.value)
    except ValueError as e:
        raise app.UsageError(str(e))
    result = run_scaling_study(config)
    print(format_summary(result["rows"], config.tflite_modes))
    print(f"cells: {len(result['ran'])} ran, {len(result['skipped'])} skipped, "
          f"{len(result['failed'])} failed")
    print(f"wrote {result['csv']}, {result['json']}", *result["figures"].values())
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    app.run(main)
