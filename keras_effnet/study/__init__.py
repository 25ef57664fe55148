"""How efficient is EfficientNet? FLOPs vs measured time vs accuracy, and the
paper's alpha/beta/gamma grid search, at a scale this machine can run.

    from keras_effnet import study
    summary = study.run_scaling_study(study.StudyConfig(models=("b0", "lite0", "resnet50")))
    result = study.run_grid_search(study.GridConfig(max_candidates=8))

Entry points: `keras-effnet study` and `keras-effnet grid-search`. Every cell
(one model at one setting) runs in a fresh worker process and is stored as it
finishes, so a rerun skips finished cells.
"""

from keras_effnet.study.grid import (
    Candidate,
    GridConfig,
    coefficients_expression,
    enumerate_candidates,
    grid_values,
    rank_rows,
    run_grid_search,
    select_candidates,
)
from keras_effnet.study.results import ResultStore, cell_id, columns, columns_markdown
from keras_effnet.study.runner import MeasureSettings, in_process, run_cells, subprocess_runner
from keras_effnet.study.study import StudyConfig, format_summary, output_paths, run_scaling_study

__all__ = [
    "Candidate",
    "GridConfig",
    "MeasureSettings",
    "ResultStore",
    "StudyConfig",
    "cell_id",
    "coefficients_expression",
    "columns",
    "columns_markdown",
    "enumerate_candidates",
    "format_summary",
    "grid_values",
    "in_process",
    "output_paths",
    "rank_rows",
    "run_cells",
    "run_grid_search",
    "run_scaling_study",
    "select_candidates",
    "subprocess_runner",
]
