"""Quantization-aware training (tfmot) into an integer-only int8 .tflite.

Path (docs/qat.md "How it works"): Keras 3 model -> `translate.translate_model` (flat
tf_keras graph with the same layer names and weights, outputs checked; every
sigmoid split into its own layer) -> `qat_graph.quantize` (annotate +
`quantize_apply`) -> `qat_graph.init_ranges` -> fine-tune on the training
data (optionally under a tf.distribute strategy) -> `qat_graph.convert_qat`
(int8 with uint8/int8/float32 I/O) -> op census (`census.check_integer_only`
fails on any float op) -> the export pipeline's metadata and verification
(`export_qat`).

Optional magnitude pruning first (`prune=0.5`): prune, strip, then
pruning-preserving QAT.
"""

import dataclasses

import numpy as np

from keras_effnet import io, litert
from keras_effnet.export import census as census_lib
from keras_effnet.export import converter, datasets, pipeline
from keras_effnet.export.quant import finetune, translate
from keras_effnet.export.quant import prune as prune_lib
from keras_effnet.export.quant.qat_configs import qat_scope
from keras_effnet.export.quant.qat_graph import (
    IO_TYPES,
    annotate,
    convert_qat,
    init_ranges,
    quantize,
)

__all__ = [
    "IO_TYPES",
    "QATResult",
    "annotate",
    "convert_qat",
    "export_qat",
    "finish_qat",
    "init_ranges",
    "predict_fn",
    "qat_scope",
    "quantization_aware_training",
    "quantize",
]


@dataclasses.dataclass
class QATResult:
    """What `quantization_aware_training` produced.

    Attributes:
      tflite: Integer-only .tflite bytes (no metadata).
      qat_model: The fine-tuned tf_keras QAT model (the TFLite reference).
      census: Op census of `tflite`.
      history: Fine-tuning history (QAT; and pruning under "prune").
      pruning: Pruning summary (see `prune.sparsity_report`) or None.
    """

    tflite: bytes
    qat_model: object
    census: dict
    history: dict
    pruning: dict = None


def quantization_aware_training(
    model,
    dataset,
    *,
    epochs=1,
    batch_size=32,
    learning_rate=3e-5,
    steps_per_epoch=None,
    io_type="uint8",
    strategy=None,
    data_dir=None,
    augment=None,
    freeze_bn=True,
    num_calibration=256,
    prune=None,
    prune_epochs=None,
    prune_schedule="constant",
    seed=0,
    verbose=0,
):
    """Keras 3 model -> QAT fine-tuning -> integer-only int8 TFLite bytes.

    Args:
      model: Trained Keras 3 classifier (composite layers are fine).
      dataset: Training data: a `keras_effnet.data` name or an (images,
        labels) tuple.
      epochs: QAT fine-tuning epochs.
      batch_size, learning_rate, steps_per_epoch, augment, seed, verbose:
        Fine-tuning settings (see `finetune.fine_tune`).
      io_type: "uint8", "int8" or "float32" input/output.
      strategy: None or a `tf.distribute.Strategy`; the
        rebuilt model is created in its scope.
      data_dir: For named datasets.
      freeze_bn: Keep BatchNormalization statistics fixed while fine-tuning
        (small QAT batches would otherwise drift them).
      num_calibration: Training images whose float activation ranges start
        the quantizer ranges (`init_ranges`); 0 keeps tfmot's [-6, 6].
      prune: Target sparsity in (0, 1) of Conv2D/Dense kernels: prune first
        (`prune.prune_tf_keras`), strip, then pruning-preserving QAT.
      prune_epochs: Pruning epochs (default: `epochs`).
      prune_schedule: Sparsity schedule, "constant" or "polynomial".

    Returns:
      A `QATResult`.

    Raises:
      ValueError: Bad arguments, a rebuild that does not match the model, or
        a converted model with float ops.
    """
    if io_type not in IO_TYPES:
        raise ValueError(f"io_type: expected one of {list(IO_TYPES)}, got {io_type!r}")
    strategy = finetune.resolve_strategy(strategy)
    settings = dict(
        batch_size=batch_size,
        learning_rate=learning_rate,
        steps_per_epoch=steps_per_epoch,
        strategy=strategy,
        data_dir=data_dir,
        augment=augment,
        seed=seed,
        verbose=verbose,
    )
    history, pruning = {}, None
    size = finetune.image_size(model)
    # Training images: for the rebuild check (random noise is far from the
    # data and amplifies float rounding past 1e-5) and for init_ranges.
    images, _ = datasets.load_arrays(
        dataset,
        "train",
        (size, size),
        limit=max(num_calibration, 16),
        data_dir=data_dir,
        shuffle=True,
        seed=seed,
    )
    with strategy.scope():
        tfk_model = translate.translate_model(model, check_inputs=images[:16], split_sigmoid=True)
    from_logits = not finetune.output_is_probability(tfk_model)
    if prune is not None:
        tfk_model, pruning, history["prune"] = prune_lib.prune_tf_keras(
            tfk_model,
            dataset,
            sparsity=prune,
            epochs=prune_epochs or epochs,
            schedule=prune_schedule,
            **settings,
        )
    if freeze_bn:
        set_batchnorm_trainable(tfk_model, False)
    with strategy.scope():
        qat_model = quantize(tfk_model, prune_preserve=prune is not None)
    if num_calibration:
        init_ranges(qat_model, tfk_model, images[:num_calibration], batch_size)
    history["qat"] = finetune.fine_tune(
        qat_model, dataset, epochs=epochs, from_logits=from_logits, **settings
    )
    tflite = convert_qat(qat_model, io_type)
    census = census_lib.op_census(tflite)
    census_lib.check_integer_only(census)
    if pruning is not None:
        pruning["tflite"] = prune_lib.tflite_weight_sparsity(tflite)
    return QATResult(tflite, qat_model, census, history, pruning)


def set_batchnorm_trainable(tfk_model, trainable):
    """Freezes/unfreezes BatchNormalization (frozen BN runs in inference)."""
    for layer in tfk_model.layers:
        if type(layer).__name__ == "BatchNormalization":
            layer.trainable = trainable


def input_grid(images, io):
    """`images` as the integer input of a .tflite sees them (dequantized).

    Args:
      images: Float pixels.
      io: An input entry of the census ("dtype", "scale", "zero_point"); a
        float input leaves the images as they are.
    """
    if io is None or io.get("scale") is None:
        return np.asarray(images, np.float32)
    return litert.input_grid(images, io["dtype"], io["scale"], io["zero_point"])


def predict_fn(qat_model, batch_size=64, io=None):
    """images (N, H, W, 3) float 0..255 -> float32 outputs of a QAT model.

    With `io` (the .tflite's input description, see `input_grid`) the model
    gets the pixels the integer-input .tflite gets, so a comparison of the
    two measures the conversion, not the rounding of the input.
    """

    def predict(images):
        return np.asarray(
            qat_model.predict(input_grid(images, io), batch_size=batch_size, verbose=0), np.float32
        )

    return predict


def export_qat(
    model,
    output,
    *,
    dataset="digits",
    epochs=1,
    prune=None,
    prune_epochs=None,
    prune_schedule="constant",
    io_type="uint8",
    labels=None,
    data_dir=None,
    batch_size=32,
    learning_rate=3e-5,
    steps_per_epoch=None,
    strategy=None,
    num_calibration=256,
    test_split="test",
    test_limit=None,
    threads=2,
    latency_runs=50,
    add_metadata=True,
    seed=0,
    overwrite=False,
):
    """QAT export: fine-tune, convert, census, metadata, verify, write.

    Args:
      model: Trained Keras 3 model or `.keras` path.
      output: Destination .tflite path (report: `<output>.verify.json`).
      dataset: Training and test data: a name, or a {split: (images,
        labels)} dict with "train" and `test_split`.
      epochs, prune, prune_epochs, prune_schedule, io_type, batch_size,
        learning_rate, steps_per_epoch, strategy, num_calibration, data_dir,
        seed: See `quantization_aware_training`.
      labels, test_split, test_limit, threads, latency_runs, add_metadata:
        See `finish_qat`.

    Returns:
      The verification report dict (see `finish_qat`).
    """
    io.check_output(output, "file", overwrite=overwrite)
    keras_model = converter.load_model(model)
    train = dataset
    if isinstance(dataset, dict):
        train = datasets.load_arrays(dataset, "train", converter.input_size(keras_model))
    result = quantization_aware_training(
        keras_model,
        train,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        steps_per_epoch=steps_per_epoch,
        io_type=io_type,
        strategy=strategy,
        data_dir=data_dir,
        prune=prune,
        prune_epochs=prune_epochs,
        prune_schedule=prune_schedule,
        num_calibration=num_calibration,
        seed=seed,
    )
    settings = {"epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size}
    return finish_qat(
        result,
        keras_model,
        output,
        dataset=dataset,
        labels=labels,
        data_dir=data_dir,
        test_split=test_split,
        test_limit=test_limit,
        threads=threads,
        latency_runs=latency_runs,
        add_metadata=add_metadata,
        settings=settings,
        overwrite=overwrite,
    )


def finish_qat(
    result,
    keras_model,
    output,
    *,
    dataset="digits",
    labels=None,
    data_dir=None,
    test_split="test",
    test_limit=None,
    threads=2,
    latency_runs=50,
    add_metadata=True,
    settings=None,
    overwrite=False,
):
    """Metadata, verification and atomic write of a `QATResult`.

    Hands the bytes to the export pipeline (`pipeline.finish_tflite`) with
    `integer_only=True`. The verification reference is the fine-tuned QAT
    model (so "keras_top1" and "top1_agreement" are against it); the float
    model's top-1 on the same images is added as "float_top1", plus "qat"
    (settings, history), "gzip_size_bytes" and, after pruning, "pruning".

    Args:
      result: From `quantization_aware_training`.
      keras_model: The float Keras 3 model it started from.
      output: Destination .tflite path.
      dataset: Test data (name or {split: arrays} dict).
      labels: Class names (list or file); default: the dataset's names when
        their count matches the model's outputs.
      data_dir, test_split, test_limit: Test data selection.
      threads, latency_runs: LiteRT verification settings (0: no latency).
      add_metadata: Write MediaPipe/Android metadata.
      settings: JSON-ready QAT settings for the report.

    Returns:
      The report dict (also written to `<output>.verify.json`).
    """
    size = converter.input_size(keras_model)
    classes = int(keras_model.outputs[0].shape[-1])
    labels = pipeline.resolve_labels(labels, dataset, data_dir, classes)
    test = datasets.load_arrays(dataset, test_split, size, limit=test_limit, data_dir=data_dir)
    float_out = np.asarray(keras_model.predict(test[0], batch_size=64, verbose=0))
    io_type = result.census["io"]["inputs"][0]["dtype"]
    extra = {
        "io_type": io_type,
        "input_size": list(size),
        "denylist": [],
        "float_top1": float(np.mean(float_out.argmax(-1) == test[1])),
        "qat": dict(settings or {}, history=result.history),
    }
    if result.pruning is not None:
        extra["pruning"] = result.pruning
    return pipeline.finish_tflite(
        result.tflite,
        predict_fn(result.qat_model, io=result.census["io"]["inputs"][0]),
        output,
        mode="qat" if result.pruning is None else "qat+prune",
        test_data=test,
        labels=labels,
        integer_only=True,
        threads=threads,
        latency_runs=latency_runs,
        extra=extra,
        add_metadata=add_metadata,
        file_entries=lambda data: {"gzip_size_bytes": prune_lib.gzip_size(data)},
        overwrite=overwrite,
    )
