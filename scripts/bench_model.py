"""Benchmark: our EfficientNetB0 vs keras.applications.EfficientNetB0 in the same run.

python scripts/bench_model.py            # 224x224 batch 16, 64x64 batch 64
python scripts/bench_model.py --configs=train:64:64 --repeats=3
"""

from absl import app, flags

_CONFIGS = flags.DEFINE_list(
    "configs",
    ["train:224:16", "inference:224:16", "train:64:64", "inference:64:64"],
    "mode:resolution:batch entries.",
)
_ITERATIONS = flags.DEFINE_integer("iterations", 5, "Steps per timed round.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed rounds (median reported).")
_JSON = flags.DEFINE_string("json", None, "Optional path for the results as JSON.")


def main(argv):
    del argv
    from keras_effnet.bench.model import compare_b0_with_keras_applications

    rows = []
    print(
        f"{'mode':<10}{'res':>5}{'batch':>6}{'keras.apps img/s':>18}{'ours img/s':>12}{'ratio':>8}"
    )
    for entry in _CONFIGS.value:
        try:
            mode, res, batch = entry.split(":")
            res, batch = int(res), int(batch)
        except ValueError:
            raise app.UsageError(
                f"--configs entries are mode:resolution:batch. Received: {entry!r}"
            )
        row = compare_b0_with_keras_applications(
            res, batch, mode, _ITERATIONS.value, _REPEATS.value
        )
        rows.append(row)
        print(
            f"{mode:<10}{res:>5}{batch:>6}{row['keras_applications_images_per_s']:>18.1f}"
            f"{row['keras_effnet_images_per_s']:>12.1f}{row['ratio']:>8.3f}",
            flush=True,
        )
    if _JSON.value:
        from keras_effnet.io import write_json_atomic

        write_json_atomic(_JSON.value, rows)


if __name__ == "__main__":
    app.run(main)
