"""The paper's grid search for alpha, beta, gamma (section 3.3), small scale.

Fix phi = 1, enumerate (alpha, beta, gamma) on a grid, keep the candidates
whose FLOPs factor alpha * beta**2 * gamma**2 is within `tolerance` of 2
(twice the FLOPs of the baseline), build each from B0 at `base_resolution`,
train it briefly and rank by accuracy and by accuracy per measured second.

    from keras_effnet.study import GridConfig, run_grid_search
    result = run_grid_search(GridConfig(base_resolution=32, max_candidates=8))
    print(result["chosen_expression"])
    # keras_effnet.EfficientNet(phi=1, alpha=1.2, beta=1.1, gamma=1.15)
"""

import dataclasses
import math
import os

from keras_effnet import io
from keras_effnet.config_flags import option
from keras_effnet.core import scaling
from keras_effnet.study import plots, results, runner, specs
from keras_effnet.study.runner import MeasureSettings

PREFIX = "grid"
ORDERS = ("closest", "spread")
RANKINGS = ("accuracy", "efficiency")
PAPER_COEFFICIENTS = (1.2, 1.1, 1.15)
_DECIMALS = 6  # Grid values are rounded so that 1.0 + 3 * 0.05 prints as 1.15.


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One (alpha, beta, gamma) and its FLOPs factor alpha * beta**2 * gamma**2."""

    alpha: float
    beta: float
    gamma: float
    flops_factor: float


def grid_values(start, stop, step):
    """Values start, start + step, ... <= stop (inclusive, rounded)."""
    for name, value in (("start", start), ("stop", stop), ("step", step)):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    if start < 1:
        raise ValueError(f"`start` must be >= 1 (scaling never shrinks). Received: start={start!r}")
    if step <= 0:
        raise ValueError(f"`step` must be > 0. Received: step={step!r}")
    if stop < start:
        raise ValueError(f"`stop` must be >= `start`. Received: start={start!r}, stop={stop!r}")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    return [round(start + i * step, _DECIMALS) for i in range(count)]


def enumerate_candidates(values, target=scaling.FLOPS_TARGET, tolerance=0.1, extra=()):
    """All grid points with |alpha * beta**2 * gamma**2 - target| <= tolerance.

    Args:
        values: grid values shared by alpha, beta and gamma (see `grid_values`).
        target: the FLOPs factor per unit of phi (paper: 2).
        tolerance: allowed absolute deviation of the factor from `target`.
        extra: additional (alpha, beta, gamma) points (e.g. the paper's,
            which is off most grids); kept only if they meet the constraint.

    Returns:
        list of `Candidate`, closest to `target` first (ties: by alpha, beta,
        gamma), without duplicates.
    """
    if not tolerance >= 0:
        raise ValueError(f"`tolerance` must be >= 0. Received: tolerance={tolerance!r}")
    points = {(a, b, g) for a in values for b in values for g in values}
    points |= {tuple(round(float(v), _DECIMALS) for v in p) for p in extra}
    found = []
    for alpha, beta, gamma in points:
        factor = scaling.flops_factor(alpha, beta, gamma)
        if abs(factor - target) <= tolerance + 1e-12:
            found.append(Candidate(alpha, beta, gamma, factor))
    return sorted(found, key=lambda c: (abs(c.flops_factor - target), c.alpha, c.beta, c.gamma))


def select_candidates(candidates, max_candidates=0, order="closest", keep=()):
    """At most `max_candidates` of `candidates` (0 = all).

    Args:
        candidates: from `enumerate_candidates` (closest first).
        max_candidates: limit (0 = no limit).
        order: "closest": the ones nearest the target; "spread": evenly
            spaced through the (alpha, beta, gamma)-sorted list, to cover the
            trade-off between depth, width and resolution.
        keep: (alpha, beta, gamma) points always kept when present.

    Returns:
        list of `Candidate` in (alpha, beta, gamma) order.
    """
    if order not in ORDERS:
        raise ValueError(f'`order` must be "closest" or "spread". Received: order={order!r}')
    if not isinstance(max_candidates, int) or max_candidates < 0:
        raise ValueError(
            f"`max_candidates` must be an int >= 0. Received: max_candidates={max_candidates!r}"
        )
    keep = {tuple(round(float(v), _DECIMALS) for v in p) for p in keep}
    kept = [c for c in candidates if (c.alpha, c.beta, c.gamma) in keep]
    rest = [c for c in candidates if c not in kept]
    if max_candidates and len(kept) + len(rest) > max_candidates:
        room = max(0, max_candidates - len(kept))
        if order == "spread":
            rest = sorted(rest, key=lambda c: (c.alpha, c.beta, c.gamma))
            rest = [rest[int(i * len(rest) / room)] for i in range(room)] if room else []
        else:
            rest = rest[:room]
        kept = kept[:max_candidates]
    return sorted(kept + rest, key=lambda c: (c.alpha, c.beta, c.gamma))


def unique_networks(candidates, base_resolution, keep=()):
    """Drops candidates that build the same network as an earlier one.

    Rounding (repeats up, channels to multiples of 8, resolution to pixels)
    maps many (alpha, beta, gamma) to one network: on B0 every alpha in
    (1, 1.25] gives the same depth at phi=1. Training such twins again only
    measures seed noise, so each network is trained once.

    Args:
        candidates: `Candidate`s, preferred first (the first of a group stays).
        base_resolution: the baseline resolution the candidates scale.
        keep: (alpha, beta, gamma) points that stay in place of their twins.

    Returns:
        (unique candidates in input order, {kept label: [dropped labels]}).
    """
    keep = {tuple(round(float(v), _DECIMALS) for v in p) for p in keep}
    ordered = sorted(candidates, key=lambda c: (c.alpha, c.beta, c.gamma) not in keep)
    first, twins = {}, {}
    for c in ordered:
        spec = specs.compound_spec(1.0, c.alpha, c.beta, c.gamma, base_resolution)
        key = specs.architecture_key(spec, specs.native_resolution(spec))
        if key in first:
            twins.setdefault(candidate_label(first[key]), []).append(candidate_label(c))
        else:
            first[key] = c
    unique = set(first.values())
    return [c for c in candidates if c in unique], twins


def candidate_label(c):
    """ "a1.20-b1.10-g1.15": the name of a candidate in tables and plots."""
    return f"a{c.alpha:.2f}-b{c.beta:.2f}-g{c.gamma:.2f}"


def coefficients_expression(alpha, beta, gamma, phi=1):
    """The Python expression building the model, e.g. for the chosen candidate."""
    return (
        f"keras_effnet.EfficientNet(phi={phi!r}, alpha={alpha!r}, beta={beta!r}, gamma={gamma!r})"
    )


def _option(default, help, **kwargs):  # noqa: A002
    # The flags of `keras-effnet grid-search` (keras_effnet.config_flags).
    return option(default, help, section="grid", **kwargs)


@dataclasses.dataclass(frozen=True)
class GridConfig(MeasureSettings):
    """The grid search (plus `MeasureSettings`; TFLite off by default).

    Attributes:
        start, stop, step: the grid of each of alpha, beta, gamma.
        target: FLOPs factor per unit of phi (2).
        tolerance: allowed |alpha * beta**2 * gamma**2 - target|.
        max_candidates: train at most this many (0 = all).
        order: "closest" or "spread" (see `select_candidates`).
        include_paper: also consider the paper's (1.2, 1.1, 1.15), kept
            whenever it meets the tolerance.
        base_resolution: resolution of the B0 baseline; a candidate trains
            at its own resolution round(base_resolution * gamma).
        include_baseline: also train the phi=0 baseline (reference accuracy,
            FLOPs and time ratios).
        rank_by: "accuracy" (the paper) or "efficiency" (accuracy per
            measured training second) chooses the printed coefficients.
    """

    start: float = _option(1.0, "Grid start (alpha, beta and gamma).")
    stop: float = _option(1.4, "Grid end, inclusive.")
    step: float = _option(0.05, "Grid step.")
    target: float = _option(scaling.FLOPS_TARGET, "Target of alpha*beta^2*gamma^2.")
    tolerance: float = _option(0.1, "Keep |alpha*beta^2*gamma^2 - target| <= tolerance.")
    max_candidates: int = _option(8, "Train at most this many candidates (0 = all).")
    order: str = _option("closest", "Which candidates survive --max_candidates.", choices=ORDERS)
    include_paper: bool = _option(
        True, "Also try the paper's (1.2, 1.1, 1.15) if within tolerance."
    )
    base_resolution: int = _option(32, "Resolution of the B0 baseline (>= 32).")
    include_baseline: bool = _option(True, "Also train the phi=0 baseline.")
    rank_by: str = _option(
        "accuracy", "Ranking that picks the printed coefficients.", choices=RANKINGS
    )
    # MeasureSettings fields with the grid's defaults (their flags: MeasureSettings').
    tflite_modes: tuple = ()
    epochs: int = 1
    timing_repeats: int = 3
    output_dir: str = "grid_out"

    def __post_init__(self):
        super().__post_init__()
        if self.order not in ORDERS:
            raise ValueError(
                f'`order` must be "closest" or "spread". Received: order={self.order!r}'
            )
        if self.rank_by not in RANKINGS:
            raise ValueError(
                f'`rank_by` must be "accuracy" or "efficiency". Received: rank_by={self.rank_by!r}'
            )
        if not isinstance(self.base_resolution, int) or self.base_resolution < 32:
            raise ValueError(
                f"`base_resolution` must be an int >= 32. "
                f"Received: base_resolution={self.base_resolution!r}"
            )
        if not self.target > 0:
            raise ValueError(
                f"`target` (the FLOPs factor per unit of phi, paper: 2) must be > 0. "
                f"Received: target={self.target!r}"
            )
        self.candidates()  # Validates the grid, tolerance, order and limit.

    def candidates(self):
        """The candidates to train: in tolerance, one per network, at most `max_candidates`."""
        return self._candidates()[0]

    def twins(self):
        """{trained candidate: [candidates building the same network, not trained]}."""
        return self._candidates()[1]

    def _candidates(self):
        extra = (PAPER_COEFFICIENTS,) if self.include_paper else ()
        found = enumerate_candidates(
            grid_values(self.start, self.stop, self.step), self.target, self.tolerance, extra
        )
        unique, twins = unique_networks(found, self.base_resolution, keep=extra)
        chosen = select_candidates(unique, self.max_candidates, self.order, keep=extra)
        labels = {candidate_label(c) for c in chosen}
        return chosen, {k: v for k, v in twins.items() if k in labels}

    def jobs(self):
        """[(cell_id, cell)]: per seed, the baseline (if any) first, then the candidates."""
        out = []
        for settings in self.per_seed():
            if self.include_baseline:
                spec = specs.compound_spec(
                    0.0, 1.0, 1.0, 1.0, self.base_resolution, label="baseline"
                )
                out.append(runner.make_cell(settings, spec, self.base_resolution))
            for c in self.candidates():
                spec = specs.compound_spec(
                    1.0, c.alpha, c.beta, c.gamma, self.base_resolution, label=candidate_label(c)
                )
                out.append(runner.make_cell(settings, spec, specs.native_resolution(spec)))
        return out


GRID_COLUMNS = (
    ("flops_factor", "alpha * beta^2 * gamma^2 (the constraint; target 2)"),
    (
        "flops_ratio",
        "FLOPs / FLOPs of the phi=0 baseline at base_resolution (rounding of "
        "channels, repeats and resolution makes it differ from flops_factor)",
    ),
    ("time_ratio", "train_ms_per_image / the baseline's"),
    (
        "train_cost_s",
        "train_steps * batch_size / train_images_per_s: steady-state seconds "
        "the training budget costs (tracing excluded)",
    ),
    ("accuracy_per_train_second", "accuracy / train_cost_s"),
    ("rank_accuracy", "1 = best mean accuracy (ties: cheaper first)"),
    ("rank_efficiency", "1 = best accuracy_per_train_second"),
    ("seeds", "seeds measured; accuracy and the figures above are means over them"),
    ("accuracy_spread", "half the range of accuracy over seeds"),
    (
        "gap_to_best",
        "mean over seeds of (best candidate's accuracy - this one's), paired by seed",
    ),
    ("gap_min", "smallest paired gap over seeds"),
    ("gap_max", "largest paired gap over seeds"),
    (
        "behind_best",
        "True when the best candidate beat this one on every seed (gap_min > 0): "
        "distinguishable at this budget; False: within seed noise",
    ),
)


def rank_rows(rows, baseline=None):
    """Adds the GRID_COLUMNS figures and both ranks to candidate rows (new dicts)."""
    out = []
    for row in rows:
        row = dict(row)
        row["flops_factor"] = scaling.flops_factor(row["alpha"], row["beta"], row["gamma"])
        cost = row["train_steps"] * row["batch_size"] / row["train_images_per_s"]
        row["train_cost_s"] = cost
        row["accuracy_per_train_second"] = row["accuracy"] / cost if cost > 0 else None
        if baseline:
            row["flops_ratio"] = row["flops"] / baseline["flops"]
            row["time_ratio"] = row["train_ms_per_image"] / baseline["train_ms_per_image"]
        out.append(row)
    by_accuracy = sorted(out, key=lambda r: (-r["accuracy"], r["train_cost_s"]))
    by_efficiency = sorted(out, key=lambda r: -(r["accuracy_per_train_second"] or 0.0))
    for rank, row in enumerate(by_accuracy, 1):
        row["rank_accuracy"] = rank
    for rank, row in enumerate(by_efficiency, 1):
        row["rank_efficiency"] = rank
    return by_accuracy


def paired_gaps(ranked, rows):
    """Adds gap_to_best / gap_min / gap_max / behind_best to `ranked` (new dicts).

    Gaps pair the best candidate (ranked[0]) with each candidate seed by seed:
    the seed fixes the initialization, shuffling and dropout of both, so the
    difference is less noisy than either accuracy alone.
    """
    if not ranked:
        return ranked
    by_seed = {}
    for row in rows:
        by_seed.setdefault(row["model"], {})[row["seed"]] = row["accuracy"]
    best = by_seed[ranked[0]["model"]]
    out = []
    for index, row in enumerate(ranked):
        mine = by_seed[row["model"]]
        gaps = [best[s] - mine[s] for s in sorted(set(best) & set(mine))]
        row = dict(row)
        if gaps and index:
            row.update(
                gap_to_best=sum(gaps) / len(gaps),
                gap_min=min(gaps),
                gap_max=max(gaps),
                behind_best=min(gaps) > 0,
            )
        out.append(row)
    out[0].update(gap_to_best=0.0, gap_min=0.0, gap_max=0.0, behind_best=False)
    return out


def run_grid_search(config, cell_runner=None):
    """Trains and ranks the candidates of `config` (finished cells are skipped).

    Returns:
        dict with "rows" (one per candidate, mean over seeds, ranked by
        accuracy), "cells" (one per candidate and seed), "baseline", "chosen" (row),
        "chosen_expression", "best_accuracy" / "best_efficiency" (rows),
        "ran", "skipped", "failed", "csv", "json", "figure".
    """
    io.makedirs(config.output_dir, "output_dir")
    store = results.ResultStore(os.path.join(config.output_dir, f"{PREFIX}_cells.json"))
    jobs = config.jobs()
    summary = runner.run_cells(
        jobs, store, cell_runner or runner.default_runner(config), desc="grid search"
    )
    rows = runner.run_interleaved(config, jobs, store.rows([key for key, _ in jobs]), store)
    per_model = results.aggregate(rows)
    baseline = next((r for r in per_model if r["model"] == "baseline"), None)
    ranked = rank_rows([r for r in per_model if r["model"] != "baseline"], baseline)
    ranked = paired_gaps(ranked, [r for r in rows if r["model"] != "baseline"])
    out = {
        "rows": ranked,
        "cells": rows,
        "baseline": baseline,
        **summary,
        "twins": config.twins(),
        "chosen": None,
        "chosen_expression": None,
        "best_accuracy": None,
        "best_efficiency": None,
    }
    if ranked:
        out["best_accuracy"] = ranked[0]
        out["best_efficiency"] = min(ranked, key=lambda r: r["rank_efficiency"])
        chosen = out["best_accuracy" if config.rank_by == "accuracy" else "best_efficiency"]
        out["chosen"] = chosen
        out["chosen_expression"] = coefficients_expression(
            chosen["alpha"], chosen["beta"], chosen["gamma"]
        )
    table_columns = results.columns(config.tflite_modes, GRID_COLUMNS)
    metadata = {
        "config": dataclasses.asdict(config),
        "machine": runner.machine_info(),
        "failed": summary["failed"],
        "chosen_expression": out["chosen_expression"],
        "twins": out["twins"],
        "baseline": baseline,
    }
    table_rows = ([baseline] if baseline else []) + ranked
    out["csv"], out["json"] = results.write_tables(
        table_rows, os.path.join(config.output_dir, f"{PREFIX}_results"), table_columns, metadata
    )
    out["figure"] = None
    if ranked:
        out["figure"] = plots.grid_figure(
            ranked,
            os.path.join(config.output_dir, f"{PREFIX}_candidates.png"),
            out["chosen"]["cell_id"],
            baseline,
        )
    return out
