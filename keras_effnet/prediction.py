"""`predict(model_path, images)`: top-k classes of image files, for .keras and .tflite alike.

Labels come from the .tflite's metadata (the labels.txt zipped into it by the
export), else from the run directory the model lives in (`keras_effnet.runs`),
else an explicit `labels` argument; without any, categories carry no label.
Images are resized as MediaPipe Tasks' ImageClassifier does by default
(`keras_effnet.preprocess`), so a desktop answer is the phone's answer.
"""

import dataclasses
import os
import typing

import numpy as np

from keras_effnet import preprocess, runs


class Category(typing.NamedTuple):
    """One class of a prediction: output index, its label (or None) and its probability."""

    index: int
    label: str | None
    score: float


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image, best first."""

    image: str
    categories: tuple[Category, ...]

    def to_dict(self) -> dict:
        return {"image": self.image, "categories": [c._asdict() for c in self.categories]}


class _Model:
    """A .keras or .tflite classifier on float 0..255 images, with its size, classes and labels."""

    def __init__(self, path, threads):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise ValueError(f"model_path: no such file. Received: model_path={self.path!r}")
        self.labels = None
        if self.path.endswith(".tflite"):
            from keras_effnet import litert
            from keras_effnet.export.metadata import associated_labels

            runner = litert.Runner(self.path, threads, argument="model_path")
            self.size = runner.image_size
            self.classes = int(runner.output["shape"][-1])
            self.labels = associated_labels(litert.read_flatbuffer(self.path))
            self._run = runner
        elif self.path.endswith(".keras"):
            import keras

            from keras_effnet import io

            model = io.load_model(self.path, "model_path")
            self.size = tuple(model.input_shape[1:3])
            self.classes = int(model.output_shape[-1])
            self._run = lambda x: keras.ops.convert_to_numpy(model(x, training=False))
        else:
            raise ValueError(
                f"model_path: expected a .keras or .tflite file. Received: model_path={self.path!r}"
            )
        if None in self.size:
            raise ValueError(f"model_path: {self.path!r} has a dynamic input size")

    def __call__(self, images):
        step = 1 if self.path.endswith(".tflite") else 32  # Phones run batch 1.
        return np.concatenate(
            [np.asarray(self._run(images[i : i + step])) for i in range(0, len(images), step)]
        )


def predict(
    model_path, images, top_k=5, *, labels=None, resize="mediapipe", threads=2
) -> list[Prediction]:
    """Top-k classes of each image for a .keras or .tflite classifier.

    Args:
        model_path: a .keras or .tflite file.
        images: an image file, a folder (its JPEG/PNG files) or a list of files.
            Grayscale and RGBA images are made RGB (alpha dropped).
        top_k: classes per image (at most the model's classes).
        labels: class names (list or one-per-line file); default the
            .tflite's metadata, else the labels.txt of the model's run.
        resize: "mediapipe" (default: as MediaPipe Tasks' ImageClassifier on
            the phone) or "training" (as training and export verification);
            see `keras_effnet.preprocess`.
        threads: LiteRT threads for a .tflite.

    Returns:
        A list of `Prediction`, one per image file, in file order.

    Raises:
        ValueError: missing or unreadable files, bad `top_k`, or labels whose
            count differs from the model's classes (one line).
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k: expected a positive int. Received: top_k={top_k!r}")
    files = preprocess.image_files(images)
    model = _Model(model_path, threads)
    names = _labels(model, labels)
    pixels = preprocess.load_images(files, model.size, resize)
    from keras_effnet.training.evaluation import to_probabilities

    probs = to_probabilities(model(pixels), renormalize=False)
    k = min(top_k, model.classes)
    results = []
    for path, row in zip(files, probs):
        best = np.argsort(-row, kind="stable")[:k]
        results.append(
            Prediction(
                path,
                tuple(Category(int(i), names[i] if names else None, float(row[i])) for i in best),
            )
        )
    return results


def _labels(model, labels):
    if labels is not None:
        from keras_effnet.export.metadata import read_labels

        names = read_labels(labels)
        what = "the labels argument"
        if isinstance(labels, (str, os.PathLike)):
            what = f"labels file {os.fspath(labels)!r}"
        runs.check_classes(model.classes, len(names), what, repr(model.path), unit="labels")
        return names
    if model.labels:
        runs.check_classes(
            model.classes, len(model.labels), "its metadata", repr(model.path), unit="labels"
        )
        return model.labels
    return runs.default_labels(runs.find_run(model.path), model.classes)


def format_table(predictions) -> str:
    """A text table: one row per (image, rank) with index, label and score."""
    rows = [("image", "rank", "index", "label", "score")]
    for p in predictions:
        for rank, c in enumerate(p.categories, 1):
            rows.append(
                (
                    p.image if rank == 1 else "",
                    str(rank),
                    str(c.index),
                    c.label if c.label is not None else "-",
                    f"{c.score:.4f}",
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
