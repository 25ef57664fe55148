r"""Exports a trained model to SavedModel or TFLite, verified, with metadata.

Examples:
    # Data, labels and image size default to the model's run (config.json beside it):
    keras-effnet export --model_path=runs/b0/best.keras --mode=int8 \
            --output=b0_int8.tflite
    # Quantization-aware training (tensorflow-model-optimization), then int8:
    keras-effnet export --model_path=runs/b0/best.keras --mode=qat \
            --qat_epochs=2 --dataset=digits --output=b0_qat.tflite
    # Magnitude pruning to half sparsity (0.5), alone (any mode) or with --mode=qat:
    keras-effnet export --model_path=runs/b0/best.keras --mode=int8 \
            --prune=0.5 --dataset=digits --output=b0_pruned_int8.tflite

Prints the verification table; the figures go to <output>.verify.json.
"""

import dataclasses

from absl import app, flags

from keras_effnet import commands
from keras_effnet.config_flags import define, module_name
from keras_effnet.export.options import ExportOptions
from keras_effnet.export_modes import CLI_MODES

# The command's own flags (the model, the mode, the output); every other flag is a field of
# `ExportOptions`, generated from its metadata (export/options.py, config_flags).
_MODEL_PATH = flags.DEFINE_string(
    "model_path", None, "(required) Trained .keras model.", required=True
)
_MODE = flags.DEFINE_enum(
    "mode",
    "int8",
    list(CLI_MODES),
    "Export mode (qat: quantization-aware training, then full-integer int8).",
)
_OUTPUT = flags.DEFINE_string(
    "output", None, "(required) .tflite path (a directory for --mode=savedmodel).", required=True
)
_OPTIONS = define(ExportOptions)
# The name before issue 21 (--threads is ExportOptions.threads' old name, in its metadata).
commands.define_old_name("model", "model_path")
# `--help` lists the command's flags, then the export options.
FLAG_MODULES = (__name__, module_name("export"))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from keras_effnet.cli import run_main

    run_main(commands.prog(), _export)


def _strategy(name):
    """--strategy: None (the default strategy) or a name for make_strategy."""
    if name is None:
        return None
    from keras_effnet.training.strategy import make_strategy  # pylint: disable=import-outside-toplevel

    return make_strategy(name)


def _export():
    from keras_effnet import export  # pylint: disable=import-outside-toplevel

    options = _OPTIONS.config()
    options = dataclasses.replace(options, strategy=_strategy(options.strategy))
    report = export.export(_MODEL_PATH.value, _MODE.value, _OUTPUT.value, options)
    print(export.format_table([report]))
    if report.get("denylist"):
        search = report["search"]
        print(
            f"int8 guard: {len(report['denylist'])} layers kept in float to lose "
            f"{search['accuracy_drop_pt']:.1f} pt on {search.get('split', 'validation')} "
            f"(all-integer: {search['plain_drop_pt']:.1f} pt); details in the report"
        )
    print(f"wrote {report['output']} (report: {export.report_path(_OUTPUT.value)})")
