"""The whole export: convert -> census -> metadata -> verify -> atomic write.

Nothing is written until every check has passed: a bad argument, missing
calibration data, wrong label count, a non-builtin op or a float op in an
integer model raises ValueError and leaves `output` as it was.
"""

import os

import tensorflow as tf

from keras_effnet import export_modes, io, runs
from keras_effnet.export import census as census_lib
from keras_effnet.export import converter as convert_lib
from keras_effnet.export import datasets
from keras_effnet.export import guard as guard_lib
from keras_effnet.export import metadata as metadata_lib
from keras_effnet.export import options as options_lib
from keras_effnet.export import verification as verify_lib
from keras_effnet.export.options import ExportOptions


def report_path(output) -> str:
    """Where the verification JSON of `output` goes: `<output>.verify.json`."""
    return os.fspath(output).rstrip("/\\") + ".verify.json"


def resolve_labels(labels, dataset, data_dir, classes) -> list | None:
    """Label list for the metadata, checked against the output size.

    Args:
        labels: A list, a one-per-line file, or None for the dataset's class
            names.
        dataset, data_dir: The named dataset (its class count is checked too).
        classes: The model's output size.

    Raises:
        ValueError: if the dataset's classes or the labels differ from
            `classes` in count (`runs.check_classes`: a model verified on other
            data would report nonsense, issue 21).
    """
    names = datasets.class_names(dataset, data_dir)
    if names is not None:
        runs.check_classes(classes, len(names), f"dataset {dataset!r}")
    if labels is None:
        return names
    what = "the labels argument"
    if isinstance(labels, (str, os.PathLike)):
        what = f"labels file {os.fspath(labels)!r}"
    labels = metadata_lib.read_labels(labels)
    runs.check_classes(classes, len(labels), what, unit="labels")
    return labels


def finish_tflite(
    tflite_bytes: bytes,
    reference,
    output,
    options: ExportOptions,
    *,
    mode: str,
    test_data,
    labels: list | None,
    integer_only: bool = False,
    extra: dict | None = None,
    file_entries=None,
    census: dict | None = None,
) -> dict:
    """Census, metadata, verification and atomic write of converted bytes.

    The second half of `export_tflite`, public for converters elsewhere (QAT).
    The one writer of the report: it is written once, after the file.

    Args:
        tflite_bytes: Converted model without metadata.
        reference: Float Keras model or predict function (images -> outputs).
        output: Destination .tflite path; the report goes to
            `<output>.verify.json`.
        options: `ExportOptions`; this step reads `threads`, `latency_runs`,
            `add_metadata` and `overwrite`.
        mode: Name recorded in the report.
        test_data: (images, labels) arrays of held-out data.
        labels: Class names (list) for the metadata, or None (resolved already:
            `resolve_labels`, not `options.labels`).
        integer_only: Fail if any op computes in float.
        extra: Additional JSON-ready entries for the report.
        file_entries: None or a function (final .tflite bytes, with metadata)
            -> more report entries, for figures of the written file (e.g. its
            gzip size).
        census: `census.op_census(tflite_bytes)` when the caller has it (one
            census per file: metadata adds no op or tensor), else None.

    Returns:
        The report dict (also written as JSON).
    """
    options = options_lib.resolve(options)
    if census is None:
        census = census_lib.op_census(tflite_bytes)
    census_lib.check_builtin_only(census)
    if integer_only:
        census_lib.check_integer_only(census)
    if options.add_metadata:
        tflite_bytes = metadata_lib.add_metadata(tflite_bytes, labels)
    images, targets = test_data
    report = {
        "mode": mode,
        "output": os.fspath(output),
        "tensorflow": tf.__version__,
        "metadata": bool(options.add_metadata),
        "num_labels": len(labels) if labels else 0,
    }
    report.update(extra or {})
    verified = verify_lib.verify_arrays(
        tflite_bytes,
        reference,
        images,
        targets,
        threads=options.threads,
        latency_runs=options.latency_runs,
        census=census,
    )
    report.update(verified.to_dict())
    if file_entries is not None:
        report.update(file_entries(tflite_bytes))
    io.write_bytes_atomic(output, tflite_bytes, overwrite=options.overwrite)
    io.write_json_atomic(report_path(output), report, overwrite=options.overwrite)
    return report


# The int8 guard's data: never the test split (docs/export.md, "The int8 guard").
SEARCH_SPLIT = "validation"
SEARCH_LIMIT = 500


def export_tflite(
    model,
    mode: str,
    output,
    options: ExportOptions | None = None,
    *,
    extra: dict | None = None,
    file_entries=None,
    search_split: str = SEARCH_SPLIT,
    search_limit: int = SEARCH_LIMIT,
) -> dict:
    """Exports `model` in `mode` to `output`, verified, with metadata.

    Args:
        model: Keras model or `.keras` path (the float reference).
        mode: "savedmodel" (output is a directory), "fp32", "fp16", "dynamic",
            "int8" or "int16x8".
        output: Destination path.
        options: `ExportOptions` (None = defaults), with its data resolved:
            `dataset` (a name for `keras_effnet.data.load_dataset`, or arrays,
            see `datasets`) feeds calibration (train split), the int8 guard
            (`search_split`) and verification (`test_split`); None is no data
            (`entry.export` resolves None from the model's run first). Notes
            on the fields this pipeline reads:
            io_type: integer modes' input/output dtype (int8: "uint8" default,
                "int8", "float32"; int16x8: "float32" default, "int16").
            max_accuracy_drop: int8 only: the largest top-1 loss (points, on
                `search_split`, never test) an int8 file may have. "auto" = 1.0
                for int8 (the guard is on by default) and None otherwise. Beyond
                it, the worst layers (quantization debugger ranking) are kept in
                float until the loss is small enough; if no such file is found,
                nothing is written and a ValueError gives the figures and the
                remedies. None: write the all-integer file (MSE ranges) whatever
                it scores.
            min_guard_images: int8 guard: refuse when `search_split` holds
                fewer images (its verdict would mean nothing).
            layer_report: int8 only: put the per-layer error report in the JSON.
            overwrite: replace a non-empty directory or a path of the other
                kind at `output` (docs/training.md "Output policy"); refused
                otherwise, before any work.
        extra: Additional JSON-ready entries for the report.
        file_entries: TFLite modes: see `finish_tflite`.
        search_split, search_limit: Data for the int8 guard.

    Returns:
        The verification report (also written to `<output>.verify.json`).
    """
    options = options_lib.resolve(options)
    export_modes.check_mode(mode)
    io_type = export_modes.resolve_io_type(mode, options.io_type)
    max_accuracy_drop = options.max_accuracy_drop
    if max_accuracy_drop == "auto":
        max_accuracy_drop = guard_lib.DEFAULT_MAX_ACCURACY_DROP if mode == "int8" else None
    if max_accuracy_drop is not None and mode != "int8":
        raise ValueError(f"max_accuracy_drop: only for mode 'int8', got mode {mode!r}")
    if max_accuracy_drop is not None and max_accuracy_drop < 0:
        raise ValueError(f"max_accuracy_drop: must be >= 0, got {max_accuracy_drop}")
    if options.layer_report and mode != "int8":
        raise ValueError(f"layer_report: only for mode 'int8', got {mode!r}")
    dataset, data_dir = options.dataset, options.data_dir
    if mode in export_modes.QUANTIZED_MODES and dataset is None:
        raise ValueError(f"dataset: mode {mode!r} needs calibration data, got None")
    overwrite = options.overwrite
    io.check_output(output, "directory" if mode == "savedmodel" else "file", overwrite=overwrite)
    io.check_output(report_path(output), "file", overwrite=overwrite)
    keras_model = convert_lib.load_model(model)
    size = convert_lib.input_size(keras_model)
    classes = int(keras_model.outputs[0].shape[-1])
    labels = resolve_labels(options.labels, dataset, data_dir, classes)
    test = datasets.load_arrays(
        dataset, options.test_split, size, limit=options.test_limit, data_dir=data_dir
    )
    extra = {
        "io_type": io_type,
        "dynamic_batch": bool(options.dynamic_batch),
        "input_size": list(size),
        "denylist": [],
        **(extra or {}),
    }

    if mode == "savedmodel":
        convert_lib.export_savedmodel(
            keras_model, output, dynamic_batch=options.dynamic_batch, overwrite=overwrite
        )
        report = {"mode": mode, "output": os.fspath(output), "tensorflow": tf.__version__}
        report.update(extra)
        verified = verify_lib.verify_savedmodel_arrays(output, keras_model, test[0], test[1])
        report.update(verified.to_dict())
        io.write_json_atomic(report_path(output), report, overwrite=overwrite)
        return report

    calibration = None
    if mode in export_modes.QUANTIZED_MODES:
        calibration, _ = datasets.load_arrays(
            dataset, "train", size, limit=options.num_calibration, data_dir=data_dir, shuffle=True
        )
    denylist = ()
    if mode == "int8" and (max_accuracy_drop is not None or options.layer_report):
        search = None
        if max_accuracy_drop is not None:
            search = datasets.load_arrays(
                dataset, search_split, size, limit=search_limit, data_dir=data_dir
            )
            guard_lib.check_search_size(len(search[1]), search_split, options.min_guard_images)
        guarded = guard_lib.guarded_int8(
            keras_model,
            calibration,
            search,
            max_accuracy_drop,
            io_type=io_type,
            dynamic_batch=options.dynamic_batch,
            layer_report=options.layer_report,
            threads=options.threads,
            split=search_split if search is not None else None,
        )
        if not guarded.met:
            raise guard_lib.refusal(guarded)
        tflite, denylist = guarded.tflite, guarded.denylist
        extra.update(guarded.to_dict())
    else:
        tflite = convert_lib.convert(
            keras_model, mode, calibration, io_type=io_type, dynamic_batch=options.dynamic_batch
        )
    return finish_tflite(
        tflite,
        keras_model,
        output,
        options,
        mode=mode,
        test_data=test,
        labels=labels,
        integer_only=(mode in export_modes.QUANTIZED_MODES and not denylist),
        extra=extra,
        file_entries=file_entries,
    )
