"""Reports top-1 / top-5 / loss of a .keras model or a .tflite file on a dataset split.

keras-effnet evaluate --model_path=runs/b0/best.keras --split=test   # the run's data
keras-effnet evaluate --model_path=model_int8.tflite --output_json=eval.json
"""

import json

from absl import app, flags

from keras_effnet import commands

_MODEL_PATH = flags.DEFINE_multi_string(
    "model_path", None, "(required) .keras or .tflite file (repeat to compare).", required=True
)
_DATASET = flags.DEFINE_string(
    "dataset",
    None,
    '"digits", an image folder or a TFDS name. Default: the model\'s run (config.json beside '
    "it); digits only for a 10-class model without one.",
)
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data directory (default: the run's).")
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "validation", "test"], "Split.")
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size",
    0,
    "Input side; 0 = the model's (a fixed-size model takes only its own).",
    lower_bound=0,
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Batch size.", lower_bound=1)
_MAX_EXAMPLES = flags.DEFINE_integer(
    "max_examples", 0, "Stop after N examples (0 = all).", lower_bound=0
)
_NUM_THREADS = flags.DEFINE_integer(
    "num_threads", 0, "TFLite interpreter threads (0 = LiteRT's default).", lower_bound=0
)
_OUTPUT_JSON = flags.DEFINE_string("output_json", "", "Also write the results as JSON here.")
_OVERWRITE = flags.DEFINE_bool(
    "overwrite",
    False,
    'Replace a directory or other non-file at --output_json (docs/training.md "Output policy").',
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from keras_effnet.cli import run_main

    run_main(commands.prog(), _evaluate)


def _evaluate():
    from keras_effnet import io
    from keras_effnet.training import evaluate
    from keras_effnet.training.evaluation import format_table

    if _OUTPUT_JSON.value:  # Refused before the evaluation, not after it.
        io.check_output(_OUTPUT_JSON.value, overwrite=_OVERWRITE.value, argument="output_json")
    results = [
        evaluate(
            path,
            _DATASET.value,
            _SPLIT.value,
            data_dir=_DATA_DIR.value or None,
            image_size=_IMAGE_SIZE.value or None,
            batch_size=_BATCH_SIZE.value,
            max_examples=_MAX_EXAMPLES.value or None,
            num_threads=_NUM_THREADS.value or None,
        )
        for path in _MODEL_PATH.value
    ]
    print(format_table(results))
    print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    if _OUTPUT_JSON.value:
        io.write_json_atomic(
            _OUTPUT_JSON.value,
            results if len(results) > 1 else results[0],
            overwrite=_OVERWRITE.value,
            argument="output_json",
        )
        print(f"wrote {_OUTPUT_JSON.value}")
