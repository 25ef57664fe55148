"""Model benchmarks: our B0 vs keras.applications, and several models timed together.

Both time the models in interleaved rounds (`timing`), so a background load
on the machine slows every model alike.
"""

import keras

import keras_effnet
from keras_effnet.bench.timing import InferenceStep, LiteRTStep, TrainStep, interleaved_throughput


def compare_b0_with_keras_applications(resolution, batch_size, mode, iterations=5, repeats=5):
    """Ours vs keras.applications EfficientNetB0 (weights=None, same shape and classes).

    Args:
        resolution: input side.
        batch_size: batch size.
        mode: "train" or "inference".

    Returns:
        dict with both throughputs and ratio = ours / keras.applications.
    """
    if mode not in ("train", "inference"):
        raise ValueError(f'`mode` must be "train" or "inference". Received: mode={mode!r}')
    shape = (resolution, resolution, 3)
    step_cls = TrainStep if mode == "train" else InferenceStep
    reference = keras.applications.EfficientNetB0(weights=None, input_shape=shape, classes=1000)
    ours = keras_effnet.EfficientNetB0(weights=None, input_shape=shape, classes=1000)
    results = interleaved_throughput(
        {
            "keras.applications": step_cls(reference, batch_size),
            "keras_effnet": step_cls(ours, batch_size),
        },
        iterations=iterations,
        repeats=repeats,
    )
    ref = results["keras.applications"]["images_per_s"]
    mine = results["keras_effnet"]["images_per_s"]
    return {
        "mode": mode,
        "resolution": resolution,
        "batch_size": batch_size,
        "keras_applications_images_per_s": ref,
        "keras_effnet_images_per_s": mine,
        "ratio": mine / ref,
    }


def time_models(
    models,
    tflite,
    *,
    batch_size,
    timing,
    jit_compile=False,
    threads=2,
    latency_runs=50,
    on_phase=None,
):
    """Times every model in alternating rounds (A, B, C, A, B, C, ...).

    Measured per model: Keras inference latency at batch 1, training
    throughput (a compiled `train_on_batch` on one fixed random batch,
    RMSProp, no input pipeline; random weights do not change the cost), and
    LiteRT latency at batch 1 per mode.

    Args:
        models: dict id -> Keras model.
        tflite: dict id -> {mode: .tflite path or bytes} (any subset of ids).
        batch_size: training batch size.
        timing: {"iterations", "repeats", "warmup"} of the Keras rounds.
        latency_runs: LiteRT invocations per model and mode (at least).
        on_phase: callable(phase name) for progress, or None.

    Returns:
        {id: {column: [per-round milliseconds]}} for keras_latency_ms,
        train_ms_per_image and tflite_<mode>_latency_ms.
    """
    emit = on_phase or (lambda phase: None)
    rounds = {key: {} for key in models}

    emit("keras latency")
    steps = {key: InferenceStep(m, 1, jit_compile=jit_compile) for key, m in models.items()}
    for key, r in interleaved_throughput(steps, **timing).items():
        rounds[key]["keras_latency_ms"] = [1000.0 / v for v in r["rounds"]]
    del steps

    emit("train throughput")
    steps = {key: TrainStep(m, batch_size, jit_compile=jit_compile) for key, m in models.items()}
    for key, r in interleaved_throughput(steps, **timing).items():
        rounds[key]["train_ms_per_image"] = [1000.0 / v for v in r["rounds"]]
    del steps

    iterations = 10
    repeats = max(timing["repeats"], latency_runs // iterations)
    for mode in sorted({mode for files in tflite.values() for mode in files}):
        emit(f"litert {mode}")
        steps = {
            key: LiteRTStep(files[mode], threads) for key, files in tflite.items() if mode in files
        }
        for key, r in interleaved_throughput(
            steps, iterations=iterations, repeats=repeats, warmup=10
        ).items():
            rounds[key][f"tflite_{mode}_latency_ms"] = [1000.0 / v for v in r["rounds"]]
    return rounds
