"""How efficient is EfficientNet? Params, FLOPs, measured time, memory and
accuracy after a fixed training budget, for several models on one dataset.

    keras-effnet study                  # b0,b1,b2,lite0,resnet50 @ 64px, 2 epochs, digits
    keras-effnet study --models=b0,lite0 --resolution=0 --resolution_scale=0.25
    keras-effnet study --models= --phis=0,0.5,1,1.5 --alpha=1.2 --beta=1.1 --gamma=1.15
    keras-effnet study --output_dir=docs   # the committed figures

Writes study_results.csv/.json, study_*.png, study_cells.json (resumable:
a rerun skips finished cells) and logs/ to --output_dir.
"""

import dataclasses

from absl import app, flags

from keras_effnet import commands
from keras_effnet.commands import study_flags
from keras_effnet.study import StudyConfig

_D = {f.name: f.default for f in dataclasses.fields(StudyConfig)}

_MODELS = flags.DEFINE_list(
    "models",
    list(_D["models"]),
    "Named models: b0..b7, lite0..lite4, v2b0..v2b3, v2s, v2m, v2l, resnet50 (keras.applications).",
)
_PHIS = flags.DEFINE_list("phis", [], "Extra keras_effnet.EfficientNet(phi, ...) models.")
_ALPHA = flags.DEFINE_float("alpha", _D["alpha"], "Depth base for --phis.")
_BETA = flags.DEFINE_float("beta", _D["beta"], "Width base for --phis.")
_GAMMA = flags.DEFINE_float("gamma", _D["gamma"], "Resolution base for --phis.")
_BASE_RESOLUTION = flags.DEFINE_integer(
    "base_resolution", _D["base_resolution"], "phi=0 resolution for --phis."
)
_LITE = flags.DEFINE_bool("lite", _D["lite"], "Build the --phis models as Lite.")
_RESOLUTION = flags.DEFINE_integer(
    "resolution", _D["resolution"], "Common input side; 0 = native x --resolution_scale."
)
_RESOLUTION_SCALE = flags.DEFINE_float(
    "resolution_scale", _D["resolution_scale"], "Factor on native resolutions when --resolution=0."
)
_PLOTS = flags.DEFINE_bool("plots", _D["plots"], "Write the PNG figures.")

# --dataset, --epochs, --output_dir, ... (keras_effnet.study.MeasureSettings).
_MEASURE = study_flags.define(StudyConfig)
# `--help` lists this job's flags, then the measurement flags.
FLAG_MODULES = (__name__, study_flags.MODULE)
# The parent process only schedules cells; each cell's worker imports Keras itself.
IMPORTS_BACKEND = False


def _phis(values):
    try:
        return tuple(float(p) for p in values)
    except ValueError:
        raise ValueError(
            f"`phis` must be a comma-separated list of numbers. Received: phis={','.join(values)!r}"
        ) from None


def main(argv):
    del argv
    from keras_effnet.study import run_scaling_study

    try:
        config = StudyConfig(
            models=tuple(m for m in _MODELS.value if m),
            phis=_phis(_PHIS.value),
            alpha=_ALPHA.value,
            beta=_BETA.value,
            gamma=_GAMMA.value,
            base_resolution=_BASE_RESOLUTION.value,
            lite=_LITE.value,
            resolution=_RESOLUTION.value,
            resolution_scale=_RESOLUTION_SCALE.value,
            plots=_PLOTS.value,
            **study_flags.values(_MEASURE),
        )
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

    print(format_summary(result["rows"], config.tflite_modes))
    print(
        f"cells: {len(result['ran'])} ran, {len(result['skipped'])} skipped, "
        f"{len(result['failed'])} failed"
    )
    print(f"wrote {result['csv']}, {result['json']}", *result["figures"].values())
    return 1 if result["failed"] else 0
