"""The fit phase of `train`: one `model.fit` per progressive stage, resumable.

`check_backup_stage` refuses a backup from another schedule, `fit_stages` runs
the stages from the resumed epoch on, and `prepare_multi_worker` works around
Keras 3 fit() under MultiWorkerMirroredStrategy. All of it reads the run's
`plan.RunPlan` (resolved in `plan`); the resume check and the final
evaluation are in `loop`.
"""

import tensorflow as tf

from keras_effnet import keras_internals
from keras_effnet.errors import ConfigError
from keras_effnet.training import callbacks as cb
from keras_effnet.training import modeling, progressive
from keras_effnet.training.builders import make_train_stream


def prepare_multi_worker(model, dataset, strategy):
    """Works around Keras 3 fit() under MultiWorkerMirroredStrategy.

    tensorflow/tensorflow#72388 (closed unfixed; Keras 3.15 still has it):
    1. fit() and evaluate() build metrics by reducing the first distributed
       batch with `strategy.reduce("MEAN", (x, y))`, which MultiWorkerMirrored
       cannot do for a tuple ("Attempt to convert a value (PerReplica...)").
       We build from the dataset's element spec and skip that step.
    2. Each step's logs are reduced with `strategy.reduce("MEAN", v, axis=0)`,
       invalid for scalars ("Invalid reduction dimension 0 for input with 0
       dimensions"). We reduce scalars with axis=None (a cross-worker mean of
       values that Keras' synchronized metric variables already make equal).
    Both patches are confined to multi-worker runs; the private Keras
    calls they need live in `keras_effnet.keras_internals`.
    """
    with strategy.scope():
        keras_internals.build_for_distributed_fit(model, dataset.element_spec)

    def wrap(original):
        def reduce_per_replica(values, strategy, reduction="auto"):
            if reduction in ("auto", "mean") and isinstance(
                strategy, tf.distribute.MultiWorkerMirroredStrategy
            ):
                return tf.nest.map_structure(
                    lambda v: strategy.reduce("MEAN", v, axis=None), values
                )
            return original(values, strategy, reduction)

        return reduce_per_replica

    keras_internals.wrap_tf_reduce_per_replica(wrap)


def fit_stages(model, run_plan, strategy, start_epoch, callbacks, stage_log):
    """Trains the stages of a `plan.RunPlan` from `start_epoch` on, one `fit` per stage.

    Each stage gets its own training stream (size, RandAugment, MixUp) and
    its dropout rate; the traced step is shared (see `training.progressive`).
    At the end of a `fit` Keras writes the EMA into the weights
    (`finalize_variable_values`); the next stage's BackupAndRestore restores
    the raw weights and the epoch saved at the end of the last epoch (from
    memory; after a kill, with the optimizer and generators, from the
    files), so a run killed and resumed in any stage computes what the
    uninterrupted run computes.
    A finished run runs the last stage for zero epochs (restore, re-evaluate).
    The first `model.head_epochs` epochs train the classifier alone (a
    stage is split there: one `fit` with the backbone frozen, one without).
    """
    config, stages = run_plan.config, run_plan.stages
    head = config.model.head_epochs or 0
    for stage in [s for s in stages if s.end_epoch > start_epoch] or stages[-1:]:
        first = min(max(stage.first_epoch, start_epoch), stage.end_epoch)
        stage_log.stage = stage
        ends = [head, stage.end_epoch] if first < head < stage.end_epoch else [stage.end_epoch]
        for end in ends:
            modeling.set_backbone_trainable(
                model, first >= head, freeze_bn=bool(config.model.freeze_bn)
            )
            _fit(model, run_plan, strategy, stage, first, end, callbacks)
            first = end


def _fit(model, run_plan, strategy, stage, first, end, callbacks):
    """One `fit` over epochs [first, end) of `stage`."""
    config, num_stages = run_plan.config, len(run_plan.stages)
    steps, batch = run_plan.steps_per_epoch, run_plan.global_batch_size
    train_ds = make_train_stream(run_plan, stage, skip_examples=first * steps * batch)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        prepare_multi_worker(model, train_ds, strategy)
    if num_stages > 1:
        progressive.set_dropout(model, stage.dropout_rate)
        if config.run.verbose and first < end:
            print(
                f"  stage {stage.index + 1}/{num_stages}: {stage.image_size} px, dropout "
                f"{stage.dropout_rate:.3g}, RandAugment {stage.randaugment_magnitude:.3g}, MixUp "
                f"alpha {stage.mixup_alpha:.3g}, epochs {first + 1}-{end}",
                flush=True,
            )
    model.fit(
        train_ds,
        initial_epoch=first,
        epochs=end,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=config.run.verbose,
        shuffle=False,
    )


def check_backup_stage(backup_dir, stages, start_epoch):
    """Refuses a backup whose recorded stage is not the schedule's for its epoch."""
    recorded = cb.backup_metadata(backup_dir).get("progressive_stage")
    if start_epoch and recorded is not None:
        expected = progressive.stage_of_epoch(stages, start_epoch - 1).to_dict()
        if recorded != expected:
            raise ConfigError(
                f"The backup in {backup_dir!r} was written in stage {recorded} after epoch "
                f"{start_epoch}, but this run's schedule has {expected} there. Use a new "
                f"--model_dir. Received: progressive stage {recorded}"
            )
