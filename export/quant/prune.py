"""Magnitude pruning (tfmot) of Conv2D/Dense kernels, for smaller files.

Path (docs/qat.md "How it works"): Keras 3 model -> `translate.translate_model` (flat
tf_keras graph) -> `prune_low_magnitude` on every Conv2D and Dense layer
(DepthwiseConv2D kernels are tiny and tfmot does not prune them) with a
`ConstantSparsity` or `PolynomialDecay` schedule -> fine-tune with
`UpdatePruningStep` -> `strip_pruning`. The zeros then either go back into
the Keras 3 model (`prune_model`, for any export mode) or on through
pruning-preserving QAT (`qat.quantization_aware_training(prune=...)`).
Pruned weights do not shrink a .tflite by themselves; they make it compress
well (`gzip_size`).

tfmot is imported inside functions only (it switches the process to legacy
Keras on import).
"""

import dataclasses
import gzip

import keras
import numpy as np

from keras_effnet.core import graph as flatten
from keras_effnet.export import converter, datasets, flatbuf, pipeline
from keras_effnet.export import options as options_lib
from keras_effnet.export.options import ExportOptions
from keras_effnet.export.quant import finetune, translate

SCHEDULES = ("constant", "polynomial")
PRUNED_LAYERS = ("Conv2D", "Dense")


def _check_sparsity(sparsity):
    if (
        isinstance(sparsity, bool)
        or not isinstance(sparsity, (int, float))
        or not 0.0 < sparsity < 1.0
    ):
        raise ValueError(
            f"`sparsity` (--prune) must be a fraction in (0, 1). Received: sparsity={sparsity!r}"
        )
    return float(sparsity)


def make_schedule(sparsity, total_steps, schedule="constant"):
    """A tfmot pruning schedule reaching `sparsity` within `total_steps`.

    "constant" prunes to the target at step 0 and keeps re-pruning every
    few steps; "polynomial" ramps from 0 to the target over the first 3/4 of
    the steps (the rest fine-tunes at the target).
    """
    sparsity = _check_sparsity(sparsity)
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: expected one of {list(SCHEDULES)}, got {schedule!r}")
    sched = _tfmot().sparsity.keras
    frequency = max(1, total_steps // 20)
    if schedule == "constant":
        return sched.ConstantSparsity(sparsity, begin_step=0, frequency=frequency)
    # Masks update only when (step - begin) % frequency == 0, so end on one.
    end = max(frequency, (3 * total_steps // 4) // frequency * frequency)
    return sched.PolynomialDecay(0.0, sparsity, begin_step=0, end_step=end, frequency=frequency)


def _tfmot():
    import tensorflow_model_optimization as tfmot  # Optional; sets legacy Keras on import.

    return tfmot


def prunable(layer, exclude=()):
    """True for the layers we prune: Conv2D and Dense not in `exclude`."""
    return type(layer).__name__ in PRUNED_LAYERS and layer.name not in exclude


def sparsity_report(model, exclude=()):
    """Fraction of zero weights in Conv2D/Dense kernels.

    Works on Keras 3 and tf_keras models (stripped, unwrapped).

    Returns:
      JSON-ready dict: "sparsity" (zeros / weights over all those kernels),
      "num_weights", "num_layers", and "layers" {name: sparsity}.
    """
    zeros = total = 0
    layers = {}
    for layer in model.layers:
        if not prunable(layer, exclude):
            continue
        kernel = np.asarray(keras.ops.convert_to_numpy(layer.weights[0]))
        count = int(np.sum(kernel == 0))
        layers[layer.name] = count / kernel.size
        zeros += count
        total += kernel.size
    return {
        "sparsity": zeros / total if total else 0.0,
        "num_weights": int(total),
        "num_layers": len(layers),
        "layers": layers,
    }


def gzip_size(data):
    """Size in bytes of `data` (bytes or a path) after gzip -9."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        with open(data, "rb") as f:
            data = f.read()
    return len(gzip.compress(bytes(data), compresslevel=9))


def tflite_weight_sparsity(tflite_bytes):
    """Fraction of zeros in the CONV_2D/FULLY_CONNECTED weights of a .tflite.

    Reads the constant weight tensors (operator input 1) as stored: int8
    (zero point 0, so a pruned weight is exactly 0), float32 or float16.

    Returns:
      JSON-ready dict: "sparsity", "num_weights", "num_tensors".
    """
    dtypes = {"INT8": np.int8, "FLOAT32": np.float32, "FLOAT16": np.float16}
    model = flatbuf.read_model(tflite_bytes)
    zeros = total = tensors = 0
    seen = set()
    for graph in model.subgraphs:
        for operator in graph.operators:
            if flatbuf.op_name(model, operator) not in ("CONV_2D", "FULLY_CONNECTED"):
                continue
            tensor = graph.tensors[operator.inputs[1]]
            data = model.buffers[tensor.buffer].data
            kind = flatbuf.type_name(tensor)
            if data is None or kind not in dtypes or tensor.buffer in seen:
                continue  # computed or dequantized elsewhere
            seen.add(tensor.buffer)
            values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtypes[kind])
            zeros += int(np.sum(values == 0))
            total += values.size
            tensors += 1
    return {
        "sparsity": zeros / total if total else 0.0,
        "num_weights": total,
        "num_tensors": tensors,
    }


def prune_tf_keras(
    tfk_model,
    dataset,
    options: ExportOptions,
    *,
    exclude=(),
    steps_per_epoch=None,
    augment=None,
    verbose=0,
) -> tuple:
    """Prunes, fine-tunes and strips a flat tf_keras model.

    Args:
      tfk_model: From `translate.translate_model` (not modified).
      dataset: Training data (name or (images, labels)).
      options: `ExportOptions`: `prune` (target fraction of zeros in each
        Conv2D/Dense kernel), `prune_epochs` (None = `qat_epochs`),
        `prune_schedule` (see `make_schedule`), and the fine-tuning settings
        `batch_size`, `learning_rate`, `strategy`, `data_dir`, `seed`.
      exclude: Layer names to leave dense (e.g. ("stem_conv",)).
      steps_per_epoch, augment, verbose: See `finetune.fine_tune`.

    Returns:
      (stripped tf_keras model, `sparsity_report` dict, fit history).
    """
    import tf_keras  # Optional (the 'qat' extra); Keras 2, for tfmot only.

    options = options_lib.resolve(options)
    sparsity = _check_sparsity(options.prune)
    epochs = options.prune_epochs or options.qat_epochs
    schedule, batch_size, data_dir = options.prune_schedule, options.batch_size, options.data_dir
    tfmot = _tfmot()
    strategy = finetune.resolve_strategy(options.strategy)
    if steps_per_epoch is None:
        _, steps_per_epoch = finetune.train_dataset(
            dataset, finetune.image_size(tfk_model), batch_size, data_dir=data_dir
        )
    pruning_schedule = make_schedule(sparsity, epochs * steps_per_epoch, schedule)

    def clone_fn(layer):
        clone = layer.__class__.from_config(layer.get_config())
        if prunable(layer, exclude):
            return tfmot.sparsity.keras.prune_low_magnitude(
                clone, pruning_schedule=pruning_schedule
            )
        return clone

    settings = {"from_logits": not finetune.output_is_probability(tfk_model)}
    with strategy.scope():
        pruned = tf_keras.models.clone_model(tfk_model, clone_function=clone_fn)
        translate.copy_weights(tfk_model, _unwrapped_view(pruned))
    history = finetune.fine_tune(
        pruned,
        dataset,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=options.learning_rate,
        steps_per_epoch=steps_per_epoch,
        strategy=strategy,
        data_dir=data_dir,
        augment=augment,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        seed=options.seed,
        verbose=verbose,
        **settings,
    )
    with strategy.scope():
        stripped = tfmot.sparsity.keras.strip_pruning(pruned)
        # strip_pruning reuses the training model's layer objects (two
        # graphs per layer then); a clean clone keeps `layer.output` usable.
        clean = tf_keras.models.clone_model(stripped)
        clean.set_weights(stripped.get_weights())
    stripped = clean
    translate.refresh_normalization(stripped)
    report = sparsity_report(stripped, exclude)
    report.update(
        {"target": sparsity, "schedule": schedule, "epochs": epochs, "excluded": list(exclude)}
    )
    return stripped, report, history


class _unwrapped_view:  # pylint: disable=invalid-name
    """Presents a pruning-wrapped model's layers as plain layers by name.

    `copy_weights` matches layers by name; a PruneLowMagnitude wrapper is
    named `prune_low_magnitude_<name>` and holds extra mask variables, so
    copy into the wrapped layer itself.
    """

    def __init__(self, model):
        self.layers = [getattr(l, "layer", l) for l in model.layers]


def prune_model(model, dataset, options: ExportOptions, *, exclude=(), **settings) -> tuple:
    """Prunes a Keras 3 model; returns a pruned Keras 3 copy and a report.

    The original is left untouched. The copy has exactly the stripped
    weights, so it exports in any mode (`keras_effnet.export.export_tflite`)
    and its float outputs are the reference for verification.

    Args:
      model: Trained Keras 3 classifier.
      dataset, options, exclude: See `prune_tf_keras`.
      **settings: `steps_per_epoch`, `augment`, `verbose` for `prune_tf_keras`.

    Returns:
      (pruned Keras 3 model, `sparsity_report` dict incl. "history").
    """
    options = options_lib.resolve(options)
    _check_sparsity(options.prune)
    strategy = finetune.resolve_strategy(options.strategy)
    size = finetune.image_size(model)
    images, _ = datasets.load_arrays(
        dataset, "train", (size, size), limit=16, data_dir=options.data_dir
    )
    with strategy.scope():
        tfk_model = translate.translate_model(model, check_inputs=images)
    stripped, report, history = prune_tf_keras(
        tfk_model,
        dataset,
        dataclasses.replace(options, strategy=strategy),
        exclude=exclude,
        **settings,
    )
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    translate.copy_weights(stripped, flatten.flatten_model(copy))
    report["history"] = history
    report["keras_sparsity"] = sparsity_report(flatten.flatten_model(copy), exclude)["sparsity"]
    return copy, report


def export_pruned(
    model, mode: str, output, options: ExportOptions, *, exclude=(), steps_per_epoch=None
) -> dict:
    """Prunes a model, then exports it in any post-training `mode`.

    The export pipeline (`keras_effnet.export.export_tflite`) converts,
    verifies (against the pruned float model) and writes; its report gets
    "pruning" (the `prune_model` report, plus the zeros found in the
    .tflite weights) and "gzip_size_bytes".

    Args:
      model: Trained Keras 3 model or `.keras` path.
      mode, output: As `export_tflite`.
      options: `ExportOptions` with `prune` set: the pruning settings (see
        `prune_tf_keras`; dataset and data_dir are shared with the export),
        then the export's.
      exclude, steps_per_epoch: See `prune_tf_keras`.

    Returns:
      The report dict (also written to `<output>.verify.json`).
    """
    options = options_lib.resolve(options)
    keras_model = converter.load_model(model)
    train = options.dataset
    if isinstance(train, dict):
        train = datasets.load_arrays(train, "train", converter.input_size(keras_model))
    pruned, report = prune_model(
        keras_model, train, options, exclude=exclude, steps_per_epoch=steps_per_epoch
    )

    def file_entries(data):
        return {
            "pruning": dict(report, tflite=tflite_weight_sparsity(data)),
            "gzip_size_bytes": gzip_size(data),
        }

    return pipeline.export_tflite(
        pruned, mode, output, options, extra={"pruning": report}, file_entries=file_entries
    )
