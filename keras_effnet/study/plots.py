"""Figures of the scaling study and the grid search (matplotlib, Agg backend).

Each figure is rendered to memory and written atomically.
"""

import io
import math
import os

import numpy as np

from keras_effnet.export_modes import INTEGER_WEIGHT_MODES
from keras_effnet.io import write_bytes_atomic

STUDY_FIGURES = ("accuracy_vs_flops", "time_vs_flops", "accuracy_vs_time")
_COLORS = {
    "efficientnet": "tab:blue",
    "efficientnet-lite": "tab:green",
    "compound": "tab:purple",
    "compound-lite": "tab:olive",
    "efficientnetv2": "tab:cyan",
    "resnet50": "tab:red",
    "mobilenetv3large": "tab:brown",
    "mobilenetv3small": "tab:pink",
}


def _pyplot():
    # Deferred to the first plot: our code needs matplotlib only to draw, and the Agg
    # backend must be chosen before pyplot is imported.
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _log_axes(ax, x=True, y=True):
    """Log scale with 1-2-5 ticks printed as plain numbers (ranges here are narrow)."""
    from matplotlib import ticker  # Deferred like `_pyplot`.

    if x:
        ax.set_xscale("log")
    if y:
        ax.set_yscale("log")
    for axis in ([ax.xaxis] if x else []) + ([ax.yaxis] if y else []):
        axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(ticker.NullFormatter())


def time_metrics(modes):
    """[(column, axis label)] of the measured times, Keras first."""
    metrics = [
        ("train_ms_per_image", "training ms / image"),
        ("keras_latency_ms", "Keras latency, batch 1 (ms)"),
    ]
    metrics += [(f"tflite_{m}_latency_ms", f"LiteRT {m} latency, batch 1 (ms)") for m in modes]
    return metrics


def _scatter(ax, rows, x, y, labels=True, **kwargs):
    """Points colored by family; `<y>_spread` (over seeds, `results.aggregate`) as error bars."""
    for row in rows:
        if row.get(x) is None or row.get(y) is None:
            continue
        color = _COLORS.get(row["family"], "tab:gray")
        ax.scatter(row[x], row[y], color=color, zorder=3, **kwargs)
        if row.get(f"{y}_spread"):
            ax.errorbar(
                row[x], row[y], yerr=row[f"{y}_spread"], color=color, lw=1, capsize=2, zorder=2
            )
        if labels:
            ax.annotate(
                row["model"],
                (row[x], row[y]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )


def _legend(ax, rows):
    seen = []
    for row in rows:
        if row["family"] not in seen:
            seen.append(row["family"])
    for name in seen:
        ax.scatter([], [], color=_COLORS.get(name, "tab:gray"), label=name)


def pareto_front(points):
    """Indices of the (cost, accuracy) points no other point beats, cheapest first.

    A point is on the front when every cheaper (or equally cheap) point is
    less accurate: the models worth picking at their cost.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _pareto(ax, rows, x, y):
    """Marks the Pareto front of (x = cost, y = accuracy) with a line and rings."""
    valid = [r for r in rows if r.get(x) is not None and r.get(y) is not None]
    front = [valid[i] for i in pareto_front([(r[x], r[y]) for r in valid])]
    if not front:
        return
    ax.plot([r[x] for r in front], [r[y] for r in front], color="0.3", lw=1, zorder=1)
    ax.scatter(
        [r[x] for r in front],
        [r[y] for r in front],
        s=140,
        facecolors="none",
        edgecolors="0.3",
        zorder=2,
        label="Pareto front (Keras accuracy)",
    )


def power_law_exponent(flops, times):
    """Least-squares k of time ∝ FLOPs^k in log-log space (None below 3 distinct points)."""
    pairs = [(f, t) for f, t in zip(flops, times) if f and t and f > 0 and t > 0]
    if len({f for f, _ in pairs}) < 3:
        return None
    logf = np.log([f for f, _ in pairs])
    logt = np.log([t for _, t in pairs])
    return float(np.polyfit(logf, logt, 1)[0])


def _reference_line(ax, rows, column):
    """Dashed "time ∝ FLOPs" line through the smallest-FLOPs model."""
    valid = [r for r in rows if r.get(column)]
    if not valid:
        return
    smallest = min(valid, key=lambda r: r["mflops"])
    span = np.geomspace(min(r["mflops"] for r in valid), max(r["mflops"] for r in valid), 20)
    ax.plot(
        span,
        smallest[column] * span / smallest["mflops"],
        "k--",
        lw=1,
        zorder=1,
        label=f"time ∝ FLOPs (through {smallest['model']})",
    )


def study_figures(rows, paths, modes=()):
    """Writes the three study figures; returns {name: path}.

    Args:
        rows: study rows (see `results.columns`).
        paths: {name: png path} for each of `STUDY_FIGURES`.
        modes: TFLite modes measured.
    """
    plt = _pyplot()
    setting = _setting(rows)
    rows = [dict(r, mflops=r["flops"] / 1e6) for r in rows]
    written = {}

    fig, ax = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
    _scatter(ax, rows, "mflops", "accuracy")
    _pareto(ax, rows, "mflops", "accuracy")
    for mode in modes:
        if mode not in INTEGER_WEIGHT_MODES:
            continue
        for row in rows:
            value = row.get(f"tflite_{mode}_accuracy")
            if value is not None:
                ax.scatter(
                    row["mflops"],
                    value,
                    facecolors="none",
                    zorder=2,
                    edgecolors=_COLORS.get(row["family"], "tab:gray"),
                )
                ax.plot(
                    [row["mflops"]] * 2, [row["accuracy"], value], color="0.7", lw=0.8, zorder=1
                )
        ax.scatter([], [], facecolors="none", edgecolors="k", label=f"LiteRT {mode} (hollow)")
    _legend(ax, rows)
    _log_axes(ax, y=False)
    ax.set(xlabel="MFLOPs per image", ylabel="test top-1", title=f"Accuracy vs FLOPs\n{setting}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    written["accuracy_vs_flops"] = _save(fig, paths["accuracy_vs_flops"])

    metrics = [(c, label) for c, label in time_metrics(modes) if any(r.get(c) for r in rows)]
    ncols = 2
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(11, 4.2 * nrows), squeeze=False, layout="constrained"
    )
    for ax, (column, label) in zip(axes.flat, metrics):
        _scatter(ax, rows, "mflops", column)
        _reference_line(ax, rows, column)
        k = power_law_exponent([r["mflops"] for r in rows], [r.get(column) for r in rows])
        _log_axes(ax)
        ax.set(
            xlabel="MFLOPs per image",
            ylabel="ms",
            title=label if k is None else f"{label}; fit: time ∝ FLOPs^{k:.2f}",
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(f"Measured time vs FLOPs ({setting})")
    written["time_vs_flops"] = _save(fig, paths["time_vs_flops"])

    fig, axes = plt.subplots(
        nrows, ncols, figsize=(11, 4.0 * nrows), squeeze=False, layout="constrained"
    )
    for ax, (column, label) in zip(axes.flat, metrics):
        _scatter(ax, rows, column, "accuracy")
        _pareto(ax, rows, column, "accuracy")
        _log_axes(ax, y=False)
        ax.set(xlabel=label, ylabel="test top-1")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(f"Accuracy vs measured time ({setting})")
    written["accuracy_vs_time"] = _save(fig, paths["accuracy_vs_time"])
    return written


def _setting(rows):
    resolutions = sorted({r["resolution"] for r in rows})
    res = f"{resolutions[0]}px" if len(resolutions) == 1 else "scaled px"
    first = rows[0]
    budget = [f"{first['epochs']} epoch(s)"] if first["epochs"] else []
    seeds = min(r.get("seeds", 1) for r in rows)
    budget += [f"mean ± half range of {seeds} seeds"] if seeds > 1 else []
    budget += [f"{first['budget_seconds']:g} s budget"] if first["budget_seconds"] else []
    return f"{os.path.basename(first['dataset'].rstrip('/'))}, {res}, {' / '.join(budget)}"


def grid_figure(rows, path, chosen_id=None, baseline=None):
    """Writes the grid-search figure; returns `path`.

    Left: accuracy vs measured training time per image, colored by
    alpha*beta^2*gamma^2, chosen candidate starred. Right (with a baseline):
    measured time ratio vs FLOPs ratio to the baseline, with y = x.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    ax = axes[0]
    points = ax.scatter(
        [r["train_ms_per_image"] for r in rows],
        [r["accuracy"] for r in rows],
        c=[r["flops_factor"] for r in rows],
        cmap="viridis",
        zorder=3,
    )
    ax.errorbar(  # Half range over seeds (`results.aggregate`); 0 with one seed.
        [r["train_ms_per_image"] for r in rows],
        [r["accuracy"] for r in rows],
        yerr=[r.get("accuracy_spread", 0.0) for r in rows],
        fmt="none",
        ecolor="0.5",
        lw=1,
        capsize=2,
        zorder=2,
    )
    fig.colorbar(points, ax=ax, label="α·β²·γ²")
    for row in sorted(rows, key=lambda r: r["rank_accuracy"])[:3]:
        ax.annotate(
            row["model"],
            (row["train_ms_per_image"], row["accuracy"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    chosen = [r for r in rows if r["cell_id"] == chosen_id]
    if chosen:
        ax.scatter(
            chosen[0]["train_ms_per_image"],
            chosen[0]["accuracy"],
            marker="*",
            s=260,
            facecolors="none",
            edgecolors="red",
            zorder=4,
            label="chosen",
        )
    if baseline:
        ax.scatter(
            baseline["train_ms_per_image"],
            baseline["accuracy"],
            marker="s",
            color="k",
            zorder=4,
            label="baseline (phi=0)",
        )
    ax.set(
        xlabel="training ms / image (measured)",
        ylabel="test top-1",
        title="Grid search candidates (phi=1)",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)

    ax = axes[1]
    if baseline:
        x = [r["flops_ratio"] for r in rows]
        y = [r["train_ms_per_image"] / baseline["train_ms_per_image"] for r in rows]
        ax.scatter(x, y, c=[r["flops_factor"] for r in rows], cmap="viridis", zorder=3)
        span = [min(x + y + [1.0]), max(x + y + [2.0])]
        ax.plot(span, span, "k--", lw=1, label="time ratio = FLOPs ratio")
        ax.axvline(2.0, color="0.6", lw=1, ls=":", label="nominal 2x FLOPs")
        ax.set(
            xlabel="FLOPs / baseline FLOPs (measured)",
            ylabel="training time / baseline time",
            title="Nominal 2x FLOPs: actual FLOPs and time vs baseline",
        )
        ax.legend(fontsize=8)
    else:
        ax.scatter([r["flops_factor"] for r in rows], [r["accuracy"] for r in rows], zorder=3)
        ax.set(xlabel="α·β²·γ²", ylabel="test top-1", title="Accuracy vs constraint value")
    ax.grid(True, alpha=0.3)
    return _save(fig, path)
