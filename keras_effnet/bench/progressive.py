"""Progressive learning off vs on: wall time to a validation accuracy, and its plot.

Both modes train with `training.train_briefly` (the default recipe) on the
same data, seed and epochs; docs/training.md, "Progressive learning".
"""

import io as _io
import math
import os

import keras

from keras_effnet import io
from keras_effnet.bench.training import train_briefly


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
