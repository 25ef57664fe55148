"""TFLite metadata for MediaPipe Tasks / Android image classifiers (docs/android.md
"Android: MediaPipe Tasks ImageClassifier").

Built with the flatbuffers-generated metadata schema shipped in `mediapipe`
and LiteRT's model schema; tflite-support's writer cannot be installed beside
TF 2.21. The metadata says: input is an RGB image whose float values are
`(pixel - mean) / std` (our models take raw 0..255, so mean 0, std 1), and
the output axis carries the labels in `labels.txt`, which is appended to the
file as a zip archive (a .tflite with associated files is also a zip).
"""

import io
import os
import zipfile

import flatbuffers

from keras_effnet import runs
from keras_effnet.export import flatbuf

_METADATA_NAME = "TFLITE_METADATA"
_LABELS_FILE = "labels.txt"


def _schema():
    try:
        from mediapipe.tasks.metadata import (
            metadata_schema_py_generated as meta,
        )  # Optional (the 'android' extra): only metadata needs it.
    except ImportError as e:
        raise ImportError(
            "TFLite metadata needs the 'android' extra: pip "
            "install 'keras-effnet[android]' (mediapipe)"
        ) from e
    return meta


def read_labels(labels):
    """Returns a list of label strings from a list or a one-per-line file."""
    if isinstance(labels, (str, os.PathLike)):
        path = os.fspath(labels)
        if not os.path.isfile(path):
            raise ValueError(f"labels: no such file {path!r}")
        labels = runs.read_labels_file(path)
    labels = [str(l) for l in labels]
    bad = [l for l in labels if not l or "\n" in l]
    if bad:
        raise ValueError(f"labels: empty or multi-line label(s) {bad[:3]!r}")
    return labels


def add_metadata(
    tflite_bytes,
    labels=None,
    *,
    mean=0.0,
    std=1.0,
    name="EfficientNet image classifier",
    description=None,
    version="1",
    author="keras-effnet",
    license_=None,
):
    """Returns `tflite_bytes` with image-classifier metadata and labels.

    Args:
        tflite_bytes: A single-input, single-output image classifier.
        labels: Class names (list or one-per-line file), or None for no labels.
            Their count must equal the output size (checked here: MediaPipe
            accepts a mismatch at create and hangs on a later classify call).
        mean, std: Normalization the float input expects, per channel or one
            value: input = (pixel - mean) / std. Our models: 0 and 1.
        name, description, version, author, license_: Free text.

    Raises:
        ValueError: wrong label count or a model that is not a classifier.
    """
    meta = _schema()
    model = flatbuf.read_model(tflite_bytes)
    io_desc = flatbuf.io_details(model)
    if len(io_desc["inputs"]) != 1 or len(io_desc["outputs"]) != 1:
        raise ValueError(
            "tflite_bytes: expected one input and one output, got "
            f"{len(io_desc['inputs'])} and {len(io_desc['outputs'])}"
        )
    image, scores = io_desc["inputs"][0], io_desc["outputs"][0]
    if len(image["shape"]) != 4 or image["shape"][3] != 3:
        raise ValueError(f"tflite_bytes: input shape {image['shape']} is not RGB NHWC")
    classes = scores["shape"][-1]
    labels = read_labels(labels) if labels is not None else None
    if labels is not None and len(labels) != classes:
        raise ValueError(f"labels: got {len(labels)} labels, the model outputs {classes} classes")
    mean = [float(m) for m in (mean if hasattr(mean, "__len__") else [mean] * 3)]
    std = [float(s) for s in (std if hasattr(std, "__len__") else [std] * 3)]
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean/std: need 1 or 3 values, std > 0, got {mean} and {std}")

    norm = meta.NormalizationOptionsT()
    norm.mean, norm.std = mean, std
    unit = meta.ProcessUnitT()
    unit.optionsType = meta.ProcessUnitOptions.NormalizationOptions
    unit.options = norm
    size = meta.ImageSizeT()
    size.height, size.width = image["shape"][1], image["shape"][2]
    props = meta.ImagePropertiesT()
    props.colorSpace, props.defaultSize = meta.ColorSpaceType.RGB, size
    inp = meta.TensorMetadataT()
    inp.name = "image"
    inp.description = (
        "RGB image. Float input: (pixel - mean) / std per "
        "NormalizationOptions; integer input: raw pixels."
    )
    inp.content = meta.ContentT()
    inp.content.contentPropertiesType = meta.ContentProperties.ImageProperties
    inp.content.contentProperties = props
    inp.processUnits = [unit]
    inp.stats = meta.StatsT()
    inp.stats.min = [(0.0 - m) / s for m, s in zip(mean, std)]
    inp.stats.max = [(255.0 - m) / s for m, s in zip(mean, std)]

    out = meta.TensorMetadataT()
    out.name = "probability"
    out.description = f"Probabilities of the {classes} classes."
    out.content = meta.ContentT()
    out.content.contentPropertiesType = meta.ContentProperties.FeatureProperties
    out.content.contentProperties = meta.FeaturePropertiesT()
    out.stats = meta.StatsT()
    out.stats.min, out.stats.max = [0.0], [1.0]
    if labels is not None:
        label_file = meta.AssociatedFileT()
        label_file.name = _LABELS_FILE
        label_file.description = "One class name per line, in output order."
        label_file.type = meta.AssociatedFileType.TENSOR_AXIS_LABELS
        out.associatedFiles = [label_file]

    graph = meta.SubGraphMetadataT()
    graph.inputTensorMetadata, graph.outputTensorMetadata = [inp], [out]
    info = meta.ModelMetadataT()
    info.name, info.version, info.author = name, version, author
    info.description = description or (
        f"Image classifier, {size.height}x{size.width} RGB in, {classes} classes out."
    )
    info.license = license_
    info.subgraphMetadata = [graph]
    info.minParserVersion = "1.0.0"
    builder = flatbuffers.Builder(1024)
    builder.Finish(info.Pack(builder), file_identifier=b"M001")
    blob = bytes(builder.Output())

    # Replace any earlier TFLITE_METADATA entry, keep the converter's others.
    buffer = flatbuf.schema.BufferT()
    buffer.data = list(blob)
    model.buffers.append(buffer)
    entry = flatbuf.schema.MetadataT()
    entry.name, entry.buffer = _METADATA_NAME, len(model.buffers) - 1
    model.metadata = [
        m for m in (model.metadata or []) if m.name not in (_METADATA_NAME, _METADATA_NAME.encode())
    ] + [entry]
    result = flatbuf.write_model(model)
    if labels is not None:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
            z.writestr(_LABELS_FILE, "\n".join(labels) + "\n")
        # Appended last: re-packing the flatbuffer would drop trailing bytes.
        result += archive.getvalue()
    return result


def read_metadata(tflite_bytes):
    """Returns (ModelMetadataT or None, labels list or None) of a .tflite."""
    meta = _schema()
    model = flatbuf.read_model(tflite_bytes)
    info = None
    for entry in model.metadata or []:
        if entry.name in (_METADATA_NAME, _METADATA_NAME.encode()):
            data = bytes(bytearray(model.buffers[entry.buffer].data))
            info = meta.ModelMetadataT.InitFromPackedBuf(bytearray(data), 0)
    return info, associated_labels(tflite_bytes)


def associated_labels(tflite_bytes):
    """The labels.txt zipped into a .tflite by `add_metadata`, or None (needs no mediapipe)."""
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(tflite_bytes))) as z:
            return z.read(_LABELS_FILE).decode("utf-8").splitlines()
    except (zipfile.BadZipFile, KeyError):
        return None
