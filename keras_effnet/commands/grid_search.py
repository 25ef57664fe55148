"""The paper's alpha/beta/gamma grid search (phi=1 under alpha*beta^2*gamma^2 ~ 2), small scale.

    keras-effnet grid-search                                   # B0 @ 32px, 8 candidates, 1 epoch
    keras-effnet grid-search --start=1.0 --stop=1.4 --step=0.05 --tolerance=0.05 --max_candidates=0
    keras-effnet grid-search --base_resolution=48 --order=spread --output_dir=docs

Prints the chosen coefficients as a buildable expression, e.g.
`keras_effnet.EfficientNet(phi=1, alpha=1.2, beta=1.1, gamma=1.15)`, and writes
grid_results.csv/.json, grid_candidates.png and grid_cells.json (resumable).
"""

from absl import app

from keras_effnet import commands
from keras_effnet.commands import study_flags
from keras_effnet.config_flags import module_name
from keras_effnet.study import GridConfig

# --start, --stop, --order, ... (GridConfig's own fields).
_GRID = study_flags.define_own(GridConfig)
# --dataset, --epochs, --output_dir, ... (keras_effnet.study.MeasureSettings).
_MEASURE = study_flags.define(GridConfig)
# `--help` lists this job's flags, then the measurement flags.
FLAG_MODULES = (module_name("grid"), study_flags.MODULE)
# The parent process only schedules cells; each cell's worker imports Keras itself.
IMPORTS_BACKEND = False


def main(argv):
    del argv
    from keras_effnet.study import run_grid_search

    try:
        config = GridConfig(**_GRID.field_values(), **study_flags.values(_MEASURE))
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
        f"{'train ms/img':>13}{'acc ± spread':>15}{'gap to #1':>17}{'acc/s':>8}"
    )
    for row in result["rows"]:
        gap = ""
        if row["rank_accuracy"] > 1:
            gap = f"{row['gap_to_best']:+.3f}" + (" behind" if row["behind_best"] else " noise")
        print(
            f"{row['rank_accuracy']:>4}  {row['model']:<20}{row['flops_factor']:>10.3f}"
            f"{row.get('flops_ratio') or float('nan'):>8.2f}{row['resolution']:>5}"
            f"{row['train_ms_per_image']:>13.2f}"
            f"{row['accuracy']:>8.3f} ± {row['accuracy_spread']:.3f}{gap:>17}"
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
