"""The main job, end to end on the offline default data (or any dataset):

train -> evaluate -> export full-integer int8 .tflite with metadata -> verify

keras-effnet quickstart --model_dir=runs/quickstart
keras-effnet quickstart --model=b0 --dataset=tf_flowers --image_size=224 --epochs=30
"""

import json
import os

from absl import flags

from keras_effnet import commands
from keras_effnet.config_flags import define, module_name
from keras_effnet.export_modes import TFLITE_MODES
from keras_effnet.training.config import ExperimentConfig

# The train flags it passes on, with quickstart's defaults (keras_effnet/training/sections/).
_CONFIG = define(
    ExperimentConfig,
    only=("model", "dataset", "data_dir", "image_size", "epochs", "batch_size", "model_dir"),
    defaults={"image_size": 64, "epochs": 8, "batch_size": 32, "model_dir": "runs/quickstart"},
)
# An enum, so a bad mode is refused before training, not after it.
_MODE = flags.DEFINE_enum("mode", "int8", list(TFLITE_MODES), "Export mode of the .tflite.")
# `--help` lists --mode, then the train flags section by section.
FLAG_MODULES = (__name__, *(module_name(s) for s in ("data", "model", "run")))


def main(argv):
    del argv
    from keras_effnet.cli import run_main

    run_main(
        commands.prog(),
        _main,
        interrupted=f"The last completed epoch is kept in {flags.FLAGS.model_dir}; "
        "re-run the same command to resume.",
    )


def _main():
    import keras_effnet  # noqa: F401  (registers the layers for .keras loading)
    from keras_effnet import export
    from keras_effnet.training import evaluate, train
    from keras_effnet.training.evaluation import format_table

    config = _CONFIG.config()
    d, model_dir = config.data, config.run.model_dir
    print("== 1/3 train", flush=True)
    result = train(config)

    print("== 2/3 evaluate (test split)", flush=True)
    keras_metrics = evaluate(result.best_model_path, d.dataset, "test", data_dir=d.data_dir)
    print(format_table(keras_metrics), flush=True)

    print(
        f"== 3/3 export {_MODE.value} .tflite with metadata, verify against the float model",
        flush=True,
    )
    output = os.path.join(model_dir, f"{config.model.name}_{_MODE.value}.tflite")
    report = export.export_tflite(
        result.best_model_path,
        _MODE.value,
        output,
        export.ExportOptions(dataset=d.dataset, labels=result.labels_path, data_dir=d.data_dir),
    )
    print(export.format_table([report]), flush=True)
    print(f"wrote {output} and {export.report_path(output)}")
    print(
        json.dumps(
            {
                "keras_test_top1": keras_metrics["top1"],
                "tflite_test_top1": report.get("tflite_top1"),
                "top1_agreement": report.get("top1_agreement"),
            }
        )
    )
