"""The one LiteRT runner: interpreter, input quantization, run, dequantization, latency.

Every .tflite the package runs goes through `Runner`: the export's
verification, `evaluate`, the scaling study's timings and the benchmarks.
Images are float RGB 0..255; an integer input is quantized with the input
tensor's scale and zero point (for our uint8 models, pinned to 1 and 0, that is
the raw pixel) and integer outputs are dequantized, so callers always see
float32 outputs.
"""

import os
import statistics
import time
import warnings
from collections.abc import Iterator

import numpy as np
from ai_edge_litert import interpreter as litert

from keras_effnet import console
from keras_effnet.errors import ConfigError


def read_flatbuffer(tflite, argument="tflite") -> bytes:
    """Bytes of a .tflite given as bytes or a path (ConfigError naming `argument`)."""
    if isinstance(tflite, (bytes, bytearray, memoryview)):
        return bytes(tflite)
    path = os.fspath(tflite)
    if not os.path.isfile(path):
        raise ConfigError(f"`{argument}`: no such file. Received: {argument}={path!r}")
    with open(path, "rb") as f:
        return f.read()


def quantize(values, dtype, scale, zero_point) -> np.ndarray:
    """Float values as a tensor of `dtype` with (scale, zero_point) stores them."""
    dtype = np.dtype(dtype)
    if dtype == np.float32 or not scale:
        return np.asarray(values).astype(dtype)
    info = np.iinfo(dtype)
    q = np.round(np.asarray(values, np.float32) / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values, scale, zero_point) -> np.ndarray:
    """Integer tensor values back to float32 (float values pass through)."""
    values = np.asarray(values)
    if values.dtype == np.float32 or not scale:
        return values.astype(np.float32)
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def input_grid(images, dtype, scale, zero_point) -> np.ndarray:
    """`images` as an integer input sees them: quantized, then dequantized."""
    images = np.asarray(images, np.float32)
    if np.dtype(dtype) == np.float32 or not scale:
        return images
    return dequantize(quantize(images, dtype, scale, zero_point), scale, zero_point)


class Runner:
    """A LiteRT interpreter for one single-input classifier.

    Args:
        tflite: bytes or a path.
        threads: interpreter threads (None = LiteRT's default).
        argument: the argument or flag name errors name.
        preserve_all_tensors: keep every intermediate tensor readable after
            `invoke` (`tensor`), at the cost of memory; for calibration.

    Raises:
        ConfigError: missing file, not a .tflite flatbuffer, or an input that
            is not a (batch, H, W, 3) image.
    """

    def __init__(self, tflite, threads=2, argument="tflite", *, preserve_all_tensors=False):
        name = "bytes" if isinstance(tflite, (bytes, bytearray, memoryview)) else os.fspath(tflite)
        # LiteRT's native "Created ... XNNPACK delegate" line comes with the
        # first allocation; the preserve-all-tensors memory warning ("intended
        # for debugging purposes only") is expected: the caller asked for every
        # tensor (calibration, `export.ranges`).
        with warnings.catch_warnings(), console.native_output_filtered():
            warnings.filterwarnings("ignore", ".*experimental_preserve_all_tensors")
            try:
                self.interpreter = litert.Interpreter(
                    model_content=read_flatbuffer(tflite, argument),
                    num_threads=threads,
                    experimental_preserve_all_tensors=preserve_all_tensors,
                )
            except ValueError as e:
                if isinstance(e, ConfigError):
                    raise
                raise ConfigError(
                    f"`{argument}` is not a valid .tflite file ({e}). Received: {argument}={name!r}"
                ) from None
            shape = list(self.interpreter.get_input_details()[0]["shape"])
            if len(shape) != 4 or shape[-1] != 3:
                raise ConfigError(
                    f"`{argument}`: expected a (1, H, W, 3) image input, got input "
                    f"shape {shape}. Received: {argument}={name!r}"
                )
            self.image_size = (int(shape[1]), int(shape[2]))
            self.threads = threads
            self.batch = None
            self.set_batch(1)

    def set_batch(self, batch) -> int:
        """Runs `batch` images per invocation if the model allows it, else 1."""
        if batch == self.batch:
            return self.batch
        index = self.interpreter.get_input_details()[0]["index"]
        try:
            self.interpreter.resize_tensor_input(index, [batch, *self.image_size, 3], strict=True)
            self.interpreter.allocate_tensors()
            self.batch = batch
        except (ValueError, RuntimeError):  # A static batch-1 model.
            self.interpreter.resize_tensor_input(index, [1, *self.image_size, 3])
            self.interpreter.allocate_tensors()
            self.batch = 1
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        return self.batch

    def set_input(self, images) -> None:
        """Quantizes float 0..255 `images` (one batch) into the input tensor."""
        scale, zero = self.input["quantization"]
        self.interpreter.set_tensor(
            self.input["index"], quantize(images, self.input["dtype"], scale, zero)
        )

    def invoke(self) -> None:
        self.interpreter.invoke()

    def output_values(self) -> np.ndarray:
        """The output tensor, dequantized to float32."""
        scale, zero = self.output["quantization"]
        return dequantize(self.interpreter.get_tensor(self.output["index"]), scale, zero)

    def tensor(self, index) -> np.ndarray:
        """A copy of tensor `index` after the last `invoke` (raw, not dequantized).

        Intermediate tensors are only kept with `preserve_all_tensors=True`.
        """
        return self.interpreter.get_tensor(index)

    def run_batches(self, images, batch_size=1) -> Iterator[int]:
        """Runs float 0..255 `images` (N, H, W, 3) in batches; yields after each invoke.

        `batch_size` images go in per invocation when the model's batch is
        open (phones run batch 1, the default), else one at a time. After
        each yield, `output_values()` and `tensor()` read that batch.
        """
        images = np.asarray(images, np.float32)
        step = self.set_batch(max(1, min(batch_size, len(images))))
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            if len(chunk) != step:
                step = self.set_batch(len(chunk))
            self.set_input(chunk)
            self.invoke()
            yield len(chunk)

    def __call__(self, images, batch_size=1):
        """float32 outputs (N, classes) for float 0..255 images (N, H, W, 3) (`run_batches`)."""
        results = [self.output_values() for _ in self.run_batches(images, batch_size)]
        return np.concatenate(results) if results else np.zeros((0, 0), np.float32)

    def prime(self, image=None, seed=0) -> None:
        """Sets batch 1 and an input image (random pixels by default) for timing."""
        self.set_batch(1)
        if image is None:
            image = np.random.default_rng(seed).uniform(0, 255, self.input["shape"])
        self.set_input(np.asarray(image, np.float32))

    def timed(self, runs) -> list[float]:
        """Milliseconds of each of `runs` invocations on the current input."""
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.invoke()
            times.append((time.perf_counter() - start) * 1e3)
        return times

    def latency(self, runs=50, warmup=5, image=None) -> dict[str, float]:
        """Batch-1 latency: median/p90/mean milliseconds over `runs` invocations."""
        self.prime(image)
        for _ in range(warmup):
            self.invoke()
        times = sorted(self.timed(runs))
        return {
            "median_ms": statistics.median(times),
            "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))],
            "mean_ms": statistics.fmean(times),
            "runs": runs,
            "threads": self.threads,
        }
