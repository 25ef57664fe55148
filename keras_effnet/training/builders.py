"""The pieces a run is made of: the compiled training model and its datasets.

`train` (loop.py) and the benchmarks (`keras_effnet.bench`) build runs from these, so a
benchmark measures exactly the model and input pipeline a run trains.
"""

import logging

import keras

from keras_effnet import data
from keras_effnet.training import modeling, progressive, recipe

log = logging.getLogger("keras_effnet.training")
_BN_SAMPLE_SEED = 4321  # The BatchNorm sample is part of the run's definition, not of its seed.


def build_training_model(run_plan, image_size):
    """The compiled training model of a `plan.RunPlan` (call inside the strategy scope).

    `image_size` None builds a dynamic (None, None, 3) input and a
    `progressive.StageDropout` classifier dropout: one set of variables and
    one traced step for every stage of a progressive run.
    """
    config = run_plan.config
    model = modeling.build_model(config.model, run_plan.num_classes, image_size)
    if image_size is None:  # Progressive: the dropout rate changes per stage.
        model = progressive.with_stage_dropout(model)
    if config.run.precision != "float32":  # Loss and metrics in float32 (top-k needs it).
        outputs = keras.layers.Activation("linear", dtype="float32", name="float32_output")(
            model.output
        )
        model = keras.Model(model.inputs, outputs, name=model.name)
    if config.model.weights:
        copied, skipped = modeling.load_initial_weights(
            model, config.model.weights, config.model, config.data.image_size
        )
        log.info(
            "Initialized %d layers from %s; kept fresh: %s", copied, config.model.weights, skipped
        )
    modeling.set_batch_norm(
        model, synchronized=config.model.sync_bn, frozen=bool(config.model.freeze_bn)
    )
    compile_for_plan(model, run_plan)
    return model


def compile_for_plan(model, run_plan):
    """Compiles `model` with the recipe of `run_plan`: weight decay, schedule, optimizer, loss.

    The one place a recipe becomes an optimizer: runs (`build_training_model`)
    and the scaling study (`keras_effnet.study.measure`) train with it.
    """
    config = run_plan.config
    recipe.apply_weight_decay(model, config.optimizer.weight_decay, config.optimizer.name)
    schedule = recipe.WarmupSchedule(
        run_plan.peak_learning_rate,
        run_plan.warmup_steps,
        run_plan.total_steps,
        run_plan.steps_per_epoch,
        config.optimizer.schedule,
        config.optimizer.decay_rate,
        config.optimizer.decay_epochs,
    )
    optimizer = recipe.make_optimizer(config.optimizer, schedule, config.optimizer.ema_momentum)
    loss, metrics = recipe.make_loss_and_metrics(
        run_plan.num_classes, config.optimizer.label_smoothing
    )
    model.compile(
        optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=config.run.jit_compile
    )
    # Built for every trainable variable now, so that head-only epochs
    # (`modeling.set_backbone_trainable`) train a subset of known variables.
    optimizer.build(model.trainable_variables)
    if optimizer.use_ema:
        # At the end of fit() Keras writes the EMA into `model.trainable_variables`
        # by zipping that list with the optimizer's EMA slots by position; during
        # head-only epochs the list is a subset and the zip misassigns. The
        # optimizer's own list (all variables it was built for) pairs correctly.
        finalize = optimizer.finalize_variable_values
        optimizer.finalize_variable_values = lambda _: finalize(optimizer._trainable_variables)


def make_train_stream(run_plan, stage, skip_examples=0):
    """The training stream of `stage` (a `progressive.Stage`) from `skip_examples` on.

    The stream is positional (docs/training.md, "The run directory, and runs that survive"): a stage starting
    at example g sees what an uninterrupted run sees from g on.
    """
    config = run_plan.config
    d = config.data
    augment = data.parse_augment(d.augment)
    if stage.mixup_alpha <= 0:  # The paper's first stage has no MixUp (alpha 0).
        augment = tuple(a for a in augment if a != "mixup")
    stream = data.load_dataset(
        d.dataset,
        "train",
        stage.image_size,
        run_plan.global_batch_size,
        shuffle=True,
        augment=augment,
        drop_remainder=True,
        repeat=True,
        seed=config.run.seed,
        crop_min_area=d.crop_min_area,
        randaugment_magnitude=stage.randaugment_magnitude,
        mixup_alpha=stage.mixup_alpha or d.mixup_alpha,
        skip_examples=skip_examples,
        data_dir=d.data_dir,
        one_hot=True,
        num_classes=run_plan.num_classes,
        cache=d.cache,
    )
    return progressive.relax_image_shape(stream) if d.progressive == "on" else stream


def make_datasets(run_plan, skip_examples=0):
    """(train stream of the last stage from `skip_examples` on, validation set, BatchNorm batches).

    Validation and the BatchNorm sample are always at the target size.
    """
    config = run_plan.config
    d = config.data
    common = dict(
        data_dir=d.data_dir, one_hot=True, num_classes=run_plan.num_classes, cache=d.cache
    )
    batch = run_plan.global_batch_size
    train_ds = make_train_stream(run_plan, run_plan.stages[-1], skip_examples)
    val_ds = None
    if run_plan.splits["validation"]:
        val_ds = data.load_dataset(d.dataset, "validation", d.image_size, batch, **common)
    bn_batches = None
    if config.optimizer.bn_images:
        # A fixed, seeded sample of training images, preprocessed as for
        # evaluation: the statistics the saved model will see.
        bn_batches = data.load_dataset(
            d.dataset,
            "train",
            d.image_size,
            min(batch, config.optimizer.bn_images),
            shuffle=True,
            reshuffle=False,
            seed=_BN_SAMPLE_SEED,
            **common,
        ).take(max(1, config.optimizer.bn_images // min(batch, config.optimizer.bn_images)))
    return train_ds, val_ds, bn_batches
