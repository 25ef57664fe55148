"""Progressive learning off vs on: wall time to a validation accuracy, and its plot.

Both modes train with `training.train_briefly` (the default recipe) on the
same data, seed and epochs; docs/training.md, "Progressive learning".
"""

import io as _io
import math
import os

import keras

from keras_effnet import io
from keras_effnet.bench.training import read_runs, train_briefly


def elapsed_by_epoch(history):
    """Wall seconds from the start of `train` to the end of each epoch's validation.

    Everything counts: model building, tracing, stage changes, training,
    BatchNorm re-estimation and validation (`elapsed_time_s` of the history;
    a run must not have been resumed, or the clock restarted).
    """
    return [record["elapsed_time_s"] for record in history]


def time_to_accuracy(history, target):
    """Seconds until validation accuracy first reaches `target` (None if it never does)."""
    for seconds, record in zip(elapsed_by_epoch(history), history):
        if record.get("val_accuracy", -1.0) >= target:
            return seconds
    return None


def progressive_runs(dataset, model, image_size, epochs, seed, out_dir, **overrides):
    """The default recipe with progressive learning off, then on; same data, seed and epochs.

    Returns {"off": row, "on": row} with the rows of `train_briefly`.
    """
    rows = {}
    for mode in ("off", "on"):
        keras.backend.clear_session()
        rows[mode] = train_briefly(
            model,
            os.path.join(out_dir, mode),
            dataset=dataset,
            image_size=image_size,
            epochs=epochs,
            seed=seed,
            progressive=mode,
            **overrides,
        )
    return rows


def progressive_summary(rows, target=None):
    """Per (dataset, model, seed): time to a common validation accuracy with progressive off and on.

    `target` None takes, per (dataset, model), the best validation accuracy
    the weaker mode reached over its seeds' minimum, floored to a whole
    percent: the highest accuracy every run of both modes reached.
    """
    groups = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["model"]), []).append(row)
    out = []
    for (dataset, model), runs in sorted(groups.items()):
        goal = target if target else math.floor(100 * min(r["val_accuracy"] for r in runs)) / 100
        for row in sorted(runs, key=lambda r: (r["seed"], r["progressive"])):
            out.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "seed": row["seed"],
                    "progressive": row["progressive"],
                    "target_val_accuracy": goal,
                    "time_to_target_s": time_to_accuracy(row["history"], goal),
                    "all_epochs_s": elapsed_by_epoch(row["history"])[-1],
                    "wall_s": row["wall_s"],
                    "best_val_accuracy": row["val_accuracy"],
                    "test_top1": row["test_top1"],
                }
            )
    return out


def plot_progressive(rows, summary, path):
    """Validation accuracy against wall seconds since the run started, off vs on.

    One panel per (dataset, model); one line per run; the dashed line is the
    target of `progressive_summary`. Written atomically (PNG).
    """
    import matplotlib  # pylint: disable=import-outside-toplevel

    # Local: the backend must be chosen before pyplot is imported.
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    panels = sorted({(r["dataset"], r["model"]) for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    colors = {"off": "tab:blue", "on": "tab:orange"}
    for ax, (dataset, model) in zip(axes[0], panels):
        for row in (r for r in rows if (r["dataset"], r["model"]) == (dataset, model)):
            label = f"progressive {row['progressive']}, seed {row['seed']}"
            ax.plot(
                elapsed_by_epoch(row["history"]),
                [h["val_accuracy"] for h in row["history"]],
                marker="o",
                ms=3,
                color=colors[row["progressive"]],
                label=label,
                alpha=1.0 if row["seed"] == 0 else 0.55,
            )
        goal = next(
            s["target_val_accuracy"]
            for s in summary
            if (s["dataset"], s["model"]) == (dataset, model)
        )
        ax.axhline(goal, ls="--", color="gray", lw=1)
        ax.set_title(f"{dataset}, {model}")
        ax.set_xlabel("wall seconds since start (2 shared CPU cores)")
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    io.write_bytes_atomic(path, buffer.getvalue())


def summary_table(summary: list) -> str:
    """The Markdown table of `progressive_summary`."""
    lines = [
        "| dataset | model | seed | progressive | target val acc | s to target | s for all epochs | "
        "best val acc | test top-1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        reach = f"{e['time_to_target_s']:.0f}" if e["time_to_target_s"] is not None else "never"
        lines.append(
            f"| {e['dataset']} | {e['model']} | {e['seed']} | {e['progressive']} | "
            f"{100 * e['target_val_accuracy']:.0f} % | {reach} | {e['all_epochs_s']:.0f} | "
            f"{100 * e['best_val_accuracy']:.1f} | {100 * e['test_top1']:.1f} |"
        )
    return "\n".join(lines)


def benchmark(options) -> list:
    """`progressive_runs` for each of `options.models`, dataset and seed (a `BenchOptions`).

    Writes every finished pair of runs to `output_dir/progressive.json` at
    once (a rerun skips those), then progressive.md, progressive_summary.json
    and progressive.png; prints each run and the table.
    """
    from keras_effnet.training import real_data  # pylint: disable=import-outside-toplevel

    out = options.output_dir
    path = os.path.join(out, "progressive.json")
    rows = read_runs(path)
    done = {(r["dataset"], r["model"], r["seed"], r["progressive"]) for r in rows}
    settings = {
        "epochs": options.epochs,
        "image_size": options.image_size,
        "patch_size": options.patch_size,
        "train_per_class": options.train_per_class,
        "test_per_class": options.test_per_class,
    }
    for seed in range(options.seeds):
        for name in options.datasets:
            folder = real_data.build(
                name,
                os.path.join(out, "data"),
                options.train_per_class,
                options.test_per_class,
                patch_size=options.patch_size,
            )
            for model in options.models:
                if {(name, model, seed, m) for m in ("off", "on")} <= done:
                    continue
                run_dir = os.path.join(out, "progressive", f"{name}-{model}-s{seed}")
                for mode, row in progressive_runs(
                    folder, model, options.image_size, options.epochs or None, seed, run_dir
                ).items():
                    row.update(dataset=name, model=model, seed=seed, **settings)
                    rows.append(row)
                    print(
                        f"{name:8s} {model:6s} seed {seed} progressive {mode:3s}: best val "
                        f"{row['val_accuracy']:.4f} test top-1 {row['test_top1']:.4f} "
                        f"({row['wall_s']:.0f} s)",
                        flush=True,
                    )
                io.write_json_atomic(path, {"settings": settings, "runs": rows})
    summary = progressive_summary(rows, options.target_accuracy or None)
    table = summary_table(summary)
    io.write_text_atomic(os.path.join(out, "progressive.md"), table + "\n")
    io.write_json_atomic(os.path.join(out, "progressive_summary.json"), {"summary": summary})
    plot_progressive(rows, summary, os.path.join(out, "progressive.png"))
    print(table)
    return rows
