"""Training throughput: the input pipeline vs the bare model step, precision and XLA switches.

The bare step trains on one real batch repeated from memory
(`Dataset.from_tensors(batch).repeat()`), so it measures the model alone; the
end-to-end figure trains the same compiled model on the real training pipeline
(decode, augmentation, batching, one-hot, prefetch). A ratio near 1 means the
input pipeline is not the bottleneck. Model and datasets come from
`keras_effnet.training.builders`, the pieces `train` builds a run from.
"""

import time

import keras
import tensorflow as tf

from keras_effnet import data
from keras_effnet.training import builders, plan
from keras_effnet.training.strategy import make_strategy, precision_policy


class _BatchTimer(keras.callbacks.Callback):
    """Wall time from the start of batch `skip` to the end of the last batch."""

    def __init__(self, skip):
        super().__init__()
        self.skip = skip
        self.start = self.end = None
        self.batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.skip:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch >= self.skip:
            self.end = time.perf_counter()
            self.batches = batch - self.skip + 1


def _images_per_sec(model, dataset, steps, skip, global_batch):
    timer = _BatchTimer(skip)
    model.fit(dataset, epochs=1, steps_per_epoch=steps, callbacks=[timer], verbose=0, shuffle=False)
    return timer.batches * global_batch / (timer.end - timer.start)


def _setup(config):
    strategy = make_strategy(config.run.strategy)
    info = data.dataset_info(config.data.dataset, config.data.data_dir)
    return strategy, plan.resolve(config, info, strategy.num_replicas_in_sync)


def _model(run_plan, strategy):
    with strategy.scope():
        return builders.build_training_model(run_plan, run_plan.config.data.image_size)


def benchmark_input_pipeline(config, steps=40, skip=5, repeats=2):
    """End-to-end train throughput vs the bare model step, same model and batch.

    Args:
        config: an `ExperimentConfig` (model_dir unused).
        steps: steps per measurement (the first `skip` are not timed).
        repeats: measurements per mode; the best is kept (less noise from
            other processes on a shared machine).

    Returns:
        A dict: bare_images_per_sec, end_to_end_images_per_sec, ratio,
        pipeline_only_images_per_sec (iterating the dataset without a model),
        global_batch_size, image_size, model, augment.
    """
    strategy, run_plan = _setup(config)
    config = run_plan.config
    with precision_policy(config.run.precision):
        model = _model(run_plan, strategy)
        train_ds, _, _ = builders.make_datasets(run_plan)
        batch = next(iter(train_ds))
        bare_ds = tf.data.Dataset.from_tensors(batch).repeat()
        gb = run_plan.global_batch_size
        _images_per_sec(model, bare_ds, skip + 1, 0, gb)  # Trace once.
        bare, e2e = [], []
        for _ in range(repeats):  # Interleaved, so load changes hit both alike.
            bare.append(_images_per_sec(model, bare_ds, steps, skip, gb))
            e2e.append(_images_per_sec(model, train_ds, steps, skip, gb))
    it = iter(train_ds)
    for _ in range(skip):
        next(it)
    start = time.perf_counter()
    for _ in range(steps):
        next(it)
    pipeline = steps * gb / (time.perf_counter() - start)
    return {
        "model": config.model.name,
        "image_size": config.data.image_size,
        "global_batch_size": gb,
        "augment": config.data.augment,
        "bare_images_per_sec": max(bare),
        "end_to_end_images_per_sec": max(e2e),
        "ratio": max(e2e) / max(bare),
        "pipeline_only_images_per_sec": pipeline,
    }


def benchmark_switches(
    config,
    steps=20,
    skip=3,
    variants=(
        ("float32", False),
        ("mixed_bfloat16", False),
        ("mixed_float16", False),
        ("float32", True),
    ),
):
    """Bare train-step throughput for each (precision, jit_compile) pair.

    Returns:
        A list of dicts: precision, jit_compile, images_per_sec.
    """
    strategy, base = _setup(config)
    results = []
    for precision, jit in variants:
        run_plan = base.replace(run={"precision": precision, "jit_compile": jit})
        with precision_policy(precision):
            model = _model(run_plan, strategy)
            train_ds, _, _ = builders.make_datasets(run_plan)
            batch_ds = tf.data.Dataset.from_tensors(next(iter(train_ds))).repeat()
            gb = run_plan.global_batch_size
            _images_per_sec(model, batch_ds, skip + 1, 0, gb)
            rate = _images_per_sec(model, batch_ds, steps, skip, gb)
        results.append({"precision": precision, "jit_compile": jit, "images_per_sec": rate})
        keras.backend.clear_session()
    return results
