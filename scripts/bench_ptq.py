"""Post-training int8 of B0-B3 trained with the default recipe, several seeds.

    python scripts/bench_ptq.py                          # docs/export.md figures
    python scripts/bench_ptq.py --models=b0 --seeds=1 --epochs=4
    python scripts/bench_ptq.py --remeasure              # after an export change

For each model and seed it trains on the bundled digits at --image_size with
every training flag at its default (keras_effnet.training), converts best.keras
to plain int8 (every op quantized, calibration's min/max ranges), to int8 with
MSE ranges (keras_effnet.export.ranges) and to the file the default export
writes (the int8 guard at 1 pt: the one of the two with the lower validation
drop plus standard error, or the worst layers kept in float until that bound is
within 1 pt; "refused" when no file meets it), and scores float
and the int8 files on the validation and test splits. It
also keeps the quantization debugger's worst layers of each plain file. Results
are kept per run in --output_dir/results.json (re-running skips finished
runs) and the table in --output_dir/table.md. --remeasure converts and
scores the stored runs' best.keras again with the current export code, without
training, in this one process (figures of one version of the code).
"""

from absl import app, flags

from keras_effnet import _quiet_import

# Before the rest: TensorFlow starts without its native INFO lines.
_quiet_import.import_backend_quietly()

_MODELS = flags.DEFINE_list("models", ["b0", "b1", "b2", "b3"], "Variants to train and quantize.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per model.")
_EPOCHS = flags.DEFINE_integer("epochs", 8, "Training epochs.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Training and export resolution.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "runs/bench_ptq", "Runs and results.")
_REMEASURE = flags.DEFINE_bool(
    "remeasure", False, "Convert and score the stored runs of --models again (no training)."
)


def _table(rows):
    lines = [
        "| model | seed | float val | float test | plain int8: drop val, test (pt) | "
        "MSE ranges: drop val, test (pt) | default file: ranges, float layers, drop test (pt) | "
        "worst layer of plain (noise ratio) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        worst = r["worst_layers"][0]
        name = worst["tensor"].split(";")[0].split("/")[-2 if "/" in worst["tensor"] else 0]
        lines.append(
            f"| {r['model']} | {r['seed']} | {100 * r['validation_float_top1']:.1f} | "
            f"{100 * r['test_float_top1']:.1f} | "
            f"{r['validation_drop_pt']:+.1f}, {r['test_drop_pt']:+.1f} | "
            f"{r['validation_mse_drop_pt']:+.1f}, {r['test_mse_drop_pt']:+.1f} | "
            f"{'' if r['guarded_met'] else 'refused, best tried: '}"
            f"{r['guarded_ranges']}, {r['guarded_float_layers']}, "
            f"{r['test_guarded_drop_pt']:+.1f} | {worst['op']} {name} ({worst['noise_ratio']:.3f}) |"
        )
    for label, key in (
        ("plain int8", "test_drop_pt"),
        ("MSE ranges", "test_mse_drop_pt"),
        ("default file", "test_guarded_drop_pt"),
    ):
        kept = [r for r in rows if key != "test_guarded_drop_pt" or r["guarded_met"]]
        drops = [r[key] for r in kept]
        lines.append(
            f"\n{label}: worst test drop {max(drops):+.2f} pt over {len(kept)} runs"
            f"{' written' if len(kept) < len(rows) else ''}; "
            f"within 1 pt: {sum(d <= 1.0 for d in drops)}/{len(kept)}"
        )
    return "\n".join(lines)


def main(argv):
    del argv
    import json
    import os

    import keras

    from keras_effnet.bench import ptq as bench
    from keras_effnet.io import write_json_atomic, write_text_atomic

    os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
    store = os.path.join(_OUTPUT_DIR.value, "results.json")
    rows = []
    if os.path.exists(store):
        with open(store) as f:
            rows = json.load(f)
    done = {(r["model"], r["seed"], r["epochs"], r["image_size"]) for r in rows}
    # Seed-major order: an interrupted run still covers every model.
    for seed in range(0 if _REMEASURE.value else _SEEDS.value):
        for model in _MODELS.value:
            if (model, seed, _EPOCHS.value, _IMAGE_SIZE.value) in done:
                continue
            keras.backend.clear_session()
            row = bench.ptq_run(
                model,
                seed,
                os.path.join(_OUTPUT_DIR.value, f"{model}-s{seed}"),
                image_size=_IMAGE_SIZE.value,
                epochs=_EPOCHS.value,
            )
            rows.append(row)
            write_json_atomic(store, rows)
            print(
                f"{model} seed {seed}: float test {row['test_float_top1']:.4f}, int8 "
                f"{row['test_int8_top1']:.4f} ({row['test_drop_pt']:+.2f} pt), "
                f"{row['train_seconds']:.0f} s",
                flush=True,
            )
    for i, row in enumerate(rows):  # --remeasure, or runs stored before the MSE-range figures.
        if "test_mse_top1" not in row or (_REMEASURE.value and row["model"] in _MODELS.value):
            path = os.path.join(_OUTPUT_DIR.value, f"{row['model']}-s{row['seed']}", "best.keras")
            keras.backend.clear_session()
            rows[i] = {**row, **bench.ptq_figures(path, row["seed"], image_size=row["image_size"])}
            write_json_atomic(store, rows)
            print(
                f"{row['model']} seed {row['seed']} measured again: test drop "
                f"{rows[i]['test_drop_pt']:+.2f} pt (min/max), "
                f"{rows[i]['test_mse_drop_pt']:+.2f} pt (MSE), "
                f"{rows[i]['test_guarded_drop_pt']:+.2f} pt (default file)",
                flush=True,
            )
    table = _table([r for r in rows if r["model"] in _MODELS.value])
    write_text_atomic(os.path.join(_OUTPUT_DIR.value, "table.md"), table + "\n")
    print(table)


if __name__ == "__main__":
    app.run(main)
