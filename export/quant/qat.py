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
from keras_effnet.export import options as options_lib
from keras_effnet.export.options import ExportOptions
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
    options: ExportOptions | None = None,
    *,
    steps_per_epoch=None,
    augment=None,
    freeze_bn=True,
    verbose=0,
) -> QATResult:
    """Keras 3 model -> QAT fine-tuning -> integer-only int8 TFLite bytes.

    Args:
      model: Trained Keras 3 classifier (composite layers are fine).
      dataset: Training data: a `keras_effnet.data` name or an (images,
        labels) tuple.
      options: `ExportOptions` (None = defaults). Read here: `qat_epochs`,
        `batch_size`, `learning_rate`, `seed` (fine-tuning, see
        `finetune.fine_tune`); `io_type` ("uint8" (None), "int8" or
        "float32" input/output); `strategy` (None or a
        `tf.distribute.Strategy`; the rebuilt model is created in its scope);
        `data_dir`; `num_calibration` (training images whose float activation
        ranges start the quantizer ranges, `init_ranges`); `prune` (target
        sparsity in (0, 1) of Conv2D/Dense kernels: prune first,
        `prune.prune_tf_keras`, strip, then pruning-preserving QAT),
        `prune_epochs` (None = `qat_epochs`) and `prune_schedule`.
      steps_per_epoch, augment, verbose: Fine-tuning settings (see
        `finetune.fine_tune`).
      freeze_bn: Keep BatchNormalization statistics fixed while fine-tuning
        (small QAT batches would otherwise drift them).

    Returns:
      A `QATResult`.

    Raises:
      ValueError: Bad arguments, a rebuild that does not match the model, or
        a converted model with float ops.
    """
    options = options_lib.resolve(options)
    io_type = options.io_type or "uint8"
    num_calibration, seed, data_dir = options.num_calibration, options.seed, options.data_dir
    if io_type not in IO_TYPES:
        raise ValueError(f"io_type: expected one of {list(IO_TYPES)}, got {io_type!r}")
    strategy = finetune.resolve_strategy(options.strategy)
    settings = dict(steps_per_epoch=steps_per_epoch, augment=augment, verbose=verbose)
    tuning = dict(
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        strategy=strategy,
        data_dir=data_dir,
        seed=seed,
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
    if options.prune is not None:
        tfk_model, pruning, history["prune"] = prune_lib.prune_tf_keras(
            tfk_model, dataset, dataclasses.replace(options, strategy=strategy), **settings
        )
    if freeze_bn:
        set_batchnorm_trainable(tfk_model, False)
    with strategy.scope():
        qat_model = quantize(tfk_model, prune_preserve=options.prune is not None)
    if num_calibration:
        init_ranges(qat_model, tfk_model, images[:num_calibration], options.batch_size)
    history["qat"] = finetune.fine_tune(
        qat_model,
        dataset,
        epochs=options.qat_epochs,
        from_logits=from_logits,
        **settings,
        **tuning,
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


def export_qat(model, output, options: ExportOptions, *, steps_per_epoch=None) -> dict:
    """QAT export: fine-tune, convert, census, metadata, verify, write.

    Args:
      model: Trained Keras 3 model or `.keras` path.
      output: Destination .tflite path (report: `<output>.verify.json`).
      options: `ExportOptions`. `dataset` is training and test data: a name,
        or a {split: (images, labels)} dict with "train" and `test_split`;
        the fine-tuning settings: see `quantization_aware_training`; the rest:
        see `finish_qat`.
      steps_per_epoch: See `quantization_aware_training`.

    Returns:
      The verification report dict (see `finish_qat`).
    """
    options = options_lib.resolve(options)
    io.check_output(output, "file", overwrite=options.overwrite)
    keras_model = converter.load_model(model)
    train = options.dataset
    if isinstance(train, dict):
        train = datasets.load_arrays(train, "train", converter.input_size(keras_model))
    result = quantization_aware_training(
        keras_model, train, options, steps_per_epoch=steps_per_epoch
    )
    settings = {
        "epochs": options.qat_epochs,
        "learning_rate": options.learning_rate,
        "batch_size": options.batch_size,
    }
    return finish_qat(result, keras_model, output, options, settings=settings)


def finish_qat(
    result: QATResult,
    keras_model,
    output,
    options: ExportOptions | None = None,
    *,
    settings: dict | None = None,
) -> dict:
    """Metadata, verification and atomic write of a `QATResult`.

    Hands the bytes to the export pipeline (`pipeline.finish_tflite`) with
    `integer_only=True` and the result's census (one census per file). The
    verification reference is the fine-tuned QAT model (so "keras_top1" and
    "top1_agreement" are against it); the float model's top-1 on the same
    images is added as "float_top1", plus "qat" (settings, history),
    "gzip_size_bytes" and, after pruning, "pruning".

    Args:
      result: From `quantization_aware_training`.
      keras_model: The float Keras 3 model it started from.
      output: Destination .tflite path.
      options: `ExportOptions` (None = defaults): `dataset` (test data: name
        or {split: arrays} dict), `data_dir`, `test_split`, `test_limit`;
        `labels` (class names, list or file; None: the dataset's names when
        their count matches the model's outputs); `threads`, `latency_runs`
        (0: no latency), `add_metadata`, `overwrite`.
      settings: JSON-ready QAT settings for the report.

    Returns:
      The report dict (also written to `<output>.verify.json`).
    """
    options = options_lib.resolve(options)
    dataset, data_dir = options.dataset, options.data_dir
    size = converter.input_size(keras_model)
    classes = int(keras_model.outputs[0].shape[-1])
    labels = pipeline.resolve_labels(options.labels, dataset, data_dir, classes)
    test = datasets.load_arrays(
        dataset, options.test_split, size, limit=options.test_limit, data_dir=data_dir
    )
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
        options,
        mode="qat" if result.pruning is None else "qat+prune",
        test_data=test,
        labels=labels,
        integer_only=True,
        extra=extra,
        file_entries=lambda data: {"gzip_size_bytes": prune_lib.gzip_size(data)},
        census=result.census,
    )
