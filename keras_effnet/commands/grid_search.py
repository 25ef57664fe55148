"""The paper's alpha/beta/gamma grid search (phi=1 under alpha*beta^2*gamma^2 ~ 2), small scale.

    keras-effnet grid-search                                   # B0 @ 32px, 8 candidates, 1 epoch
    keras-effnet grid-search --start=1.0 --stop=1.4 --step=0.05 --tolerance=0.05 --max_candidates=0
    keras-effnet grid-search --base_resolution=48 --order=spread --output_dir=docs

Prints the chosen coefficients as a buildable expression, e.g.
`keras_effnet.EfficientNet(phi=1, alpha=1.2, beta=1.1, gamma=1.15)`, and writes
grid_results.csv/.json, grid_candidates.png and grid_cells.json (resumable).
"""

import dataclasses

from absl import app, flags

from keras_effnet import commands
from keras_effnet.commands import study_flags
from keras_effnet.study import GridConfig

_D = {f.name: f.default for f in dataclasses.fields(GridConfig)}

_START = flags.DEFINE_float("start", _D["start"], "Grid start (alpha, beta and gamma).")
_STOP = flags.DEFINE_float("stop", _D["stop"], "Grid end, inclusive.")
_STEP = flags.DEFINE_float("step", _D["step"], "Grid step.")
_TARGET = flags.DEFINE_float("target", _D["target"], "Target of alpha*beta^2*gamma^2.")
_TOLERANCE = flags.DEFINE_float(
    "tolerance", _D["tolerance"], "Keep |alpha*beta^2*gamma^2 - target| <= tolerance."
)
_MAX_CANDIDATES = flags.DEFINE_integer(
    "max_candidates", _D["max_candidates"], "Train at most this many candidates (0 = all)."
)
_ORDER = flags.DEFINE_enum(
    "order", _D["order"], ["closest", "spread"], "Which candidates survive --max_candidates."
)
_INCLUDE_PAPER = flags.DEFINE_bool(
    "include_paper",
    _D["include_paper"],
    "Also try the paper's (1.2, 1.1, 1.15) if within tolerance.",
)
_BASE_RESOLUTION = flags.DEFINE_integer(
    "base_resolution", _D["base_resolution"], "Resolution of the B0 baseline (>= 32)."
)
_INCLUDE_BASELINE = flags.DEFINE_bool(
    "include_baseline", _D["include_baseline"], "Also train the phi=0 baseline."
)
_RANK_BY = flags.DEFINE_enum(
    "rank_by",
    _D["rank_by"],
    ["accuracy", "efficiency"],
    "Ranking that picks the printed coefficients.",
)

# --dataset, --epochs, --output_dir, ... (keras_effnet.study.MeasureSettings).
_MEASURE = study_flags.define(GridConfig)
# `--help` lists this job's flags, then the measurement flags.
FLAG_MODULES = (__name__, study_flags.MODULE)
# The parent process only schedules cells; each cell's worker imports Keras itself.
IMPORTS_BACKEND = False


def main(argv):
    del argv
    from keras_effnet.study import run_grid_search

    try:
        config = GridConfig(
            start=_START.value,
            stop=_STOP.value,
            step=_STEP.value,
            target=_TARGET.value,
            tolerance=_TOLERANCE.value,
            max_candidates=_MAX_CANDIDATES.value,
            order=_ORDER.value,
            include_paper=_INCLUDE_PAPER.value,
            base_resolution=_BASE_RESOLUTION.value,
            include_baseline=_INCLUDE_BASELINE.value,
            rank_by=_RANK_BY.value,
            **study_flags.values(_MEASURE),
        )
    except ValueError as e:
        raise app.UsageError(str(e))
    from keras_effnet.cli import run_main

    return run_main(
        commands.prog(),
        lambda: _report(run_grid_search(config), config),
        interrupted="Finished cells are stored; re-run the same command to go on.",
    )


def _report(result, config):
    print(
        f"{'rank':>4}  {'candidate':<20}{'a*b^2*g^2':>10}{'FLOPs x':>8}{'res':>5}"
        f"{'train ms/img':>13}{'acc':>7}{'acc/s':>8}"
    )
    for row in result["rows"]:
        print(
            f"{row['rank_accuracy']:>4}  {row['model']:<20}{row['flops_factor']:>10.3f}"
            f"{row.get('flops_ratio') or float('nan'):>8.2f}{row['resolution']:>5}"
            f"{row['train_ms_per_image']:>13.2f}{row['accuracy']:>7.3f}"
            f"{row['accuracy_per_train_second']:>8.4f}"
        )
    for kept, dropped in sorted(result["twins"].items()):
        print(f"{kept} also stands for {', '.join(dropped)} (same network, trained once)")
    print(
        f"cells: {len(result['ran'])} ran, {len(result['skipped'])} skipped, "
        f"{len(result['failed'])} failed"
    )
    if result["chosen_expression"]:
        print(f"chosen ({config.rank_by}): {result['chosen_expression']}")
    print(f"wrote {result['csv']}, {result['json']}, {result['figure']}")
    return 1 if result["failed"] or not result["rows"] else 0
