"""How efficient is EfficientNet? Params, FLOPs, measured time, memory and
accuracy after a fixed training budget, for several models on one dataset.

    keras-effnet study                  # b0,b1,b2,lite0,resnet50 @ 64px, 2 epochs, digits
    keras-effnet study --models=b0,lite0 --resolution=0 --resolution_scale=0.25
    keras-effnet study --models= --phis=0,0.5,1,1.5 --alpha=1.2 --beta=1.1 --gamma=1.15
    keras-effnet study --output_dir=docs   # the committed figures

Writes study_results.csv/.json, study_*.png, study_cells.json (resumable:
a rerun skips finished cells) and logs/ to --output_dir.
"""

from absl import app

from keras_effnet import commands
from keras_effnet.commands import study_flags
from keras_effnet.config_flags import module_name
from keras_effnet.study import StudyConfig

# --models, --phis, ... (StudyConfig's own fields).
_STUDY = study_flags.define_own(StudyConfig)
# --dataset, --epochs, --output_dir, ... (keras_effnet.study.MeasureSettings).
_MEASURE = study_flags.define(StudyConfig)
# `--help` lists this job's flags, then the measurement flags.
FLAG_MODULES = (module_name("study"), study_flags.MODULE)
# The parent process only schedules cells; each cell's worker imports Keras itself.
IMPORTS_BACKEND = False


def main(argv):
    del argv
    from keras_effnet.study import run_scaling_study

    try:
        config = StudyConfig(**_STUDY.field_values(), **study_flags.values(_MEASURE))
    except ValueError as e:
        raise app.UsageError(str(e))
    from keras_effnet.cli import run_main

    return run_main(
        commands.prog(),
        lambda: _report(run_scaling_study(config), config),
        interrupted="Finished cells are stored; re-run the same command to go on.",
    )


def _report(result, config):
    from keras_effnet.study import format_summary

    print(format_summary(result["summary"], config.tflite_modes))
    print(
        f"cells: {len(result['ran'])} ran, {len(result['skipped'])} skipped, "
        f"{len(result['failed'])} failed, {len(result['missing'])} not measured"
    )
    print(
        f"wrote {result['csv']}, {result['json']}, {result['summary_csv']}",
        *result["figures"].values(),
    )
    return 1 if result["failed"] else 0
