"""Top-k classes of image files or folders with a .keras or .tflite model.

keras-effnet predict --model_path=runs/b0/best.keras photos/
keras-effnet predict --model_path=b0_int8.tflite cat.jpg dog.png --top_k=3 --json

Labels come from the .tflite metadata or the run's labels.txt. Images are
resized as MediaPipe Tasks' ImageClassifier does (--resize=training: as in
training and export verification); docs/android.md "Predict on a desktop".
"""

import json
import sys

from absl import flags

from keras_effnet import commands

_MODEL_PATH = flags.DEFINE_string(
    "model_path", None, "(required) .keras or .tflite file.", required=True
)
_TOP_K = flags.DEFINE_integer("top_k", 5, "Classes per image (at most the model's classes).")
_LABELS = flags.DEFINE_string(
    "labels", None, "Label file (default: the .tflite metadata, else the run's labels.txt)."
)
_RESIZE = flags.DEFINE_enum(
    "resize",
    "mediapipe",
    ["mediapipe", "training"],
    "mediapipe: as MediaPipe's ImageClassifier on a phone; training: as training and export "
    "verification.",
)
_NUM_THREADS = flags.DEFINE_integer("num_threads", 2, "TFLite interpreter threads.")
_JSON = flags.DEFINE_bool("json", False, "Print JSON instead of a table.")


def main(argv):
    images = argv[1:]
    if not images:
        print(
            f"{commands.prog()}: error: give image files or folders after the flags",
            file=sys.stderr,
        )
        sys.exit(2)
    from keras_effnet import prediction

    try:
        results = prediction.predict(
            _MODEL_PATH.value,
            images,
            _TOP_K.value,
            labels=_LABELS.value,
            resize=_RESIZE.value,
            threads=_NUM_THREADS.value,
        )
    except ValueError as e:  # Bad flags, images, labels or model files: one clear line, exit 2.
        print(f"{commands.prog()}: error: {e}", file=sys.stderr)
        sys.exit(2)
    if _JSON.value:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(prediction.format_table(results))
