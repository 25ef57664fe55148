"""The main job, end to end on the offline default data (or any dataset):

train -> evaluate -> export full-integer int8 .tflite with metadata -> verify

keras-effnet quickstart --model_dir=runs/quickstart
keras-effnet quickstart --model=b0 --dataset=tf_flowers --image_size=224 --epochs=30
"""

import json
import os

from absl import flags

from keras_effnet import commands
from keras_effnet.export_modes import TFLITE_MODES

_MODEL = flags.DEFINE_string("model", "lite0", "Variant: b0..b7, lite0..lite4.")
_DATASET = flags.DEFINE_string(
    "dataset", "digits", "digits (offline), a class-folder directory, or a TFDS name."
)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data directory.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Training and export resolution (0 = native).")
_EPOCHS = flags.DEFINE_integer("epochs", 8, "Training epochs.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Batch size per replica.")
_MODEL_DIR = flags.DEFINE_string("model_dir", "runs/quickstart", "Run directory (resumable).")
# An enum, so a bad mode is refused before training, not after it.
_MODE = flags.DEFINE_enum("mode", "int8", list(TFLITE_MODES), "Export mode of the .tflite.")


def main(argv):
    del argv
    from keras_effnet.cli import run_main

    run_main(
        commands.prog(),
        _main,
        interrupted=f"The last completed epoch is kept in {_MODEL_DIR.value}; "
        "re-run the same command to resume.",
    )


def _main():
    import keras_effnet  # noqa: F401  (registers the layers for .keras loading)
    from keras_effnet import export
    from keras_effnet.training import config as config_lib
    from keras_effnet.training import evaluate, train
    from keras_effnet.training.evaluation import format_table

    config = config_lib.config_from_flags(
        {
            "model": _MODEL.value,
            "dataset": _DATASET.value,
            "data_dir": _DATA_DIR.value,
            "image_size": _IMAGE_SIZE.value,
            "epochs": _EPOCHS.value,
            "batch_size": _BATCH_SIZE.value,
            "model_dir": _MODEL_DIR.value,
        }
    )
    print("== 1/3 train", flush=True)
    result = train(config)

    print("== 2/3 evaluate (test split)", flush=True)
    keras_metrics = evaluate(
        result.best_model_path, _DATASET.value, "test", data_dir=_DATA_DIR.value
    )
    print(format_table(keras_metrics), flush=True)

    print(
        f"== 3/3 export {_MODE.value} .tflite with metadata, verify against the float model",
        flush=True,
    )
    output = os.path.join(_MODEL_DIR.value, f"{_MODEL.value}_{_MODE.value}.tflite")
    report = export.export_tflite(
        result.best_model_path,
        _MODE.value,
        output,
        export.ExportOptions(
            dataset=_DATASET.value, labels=result.labels_path, data_dir=_DATA_DIR.value
        ),
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
