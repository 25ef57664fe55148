"""The recipe converges: EfficientNet-Lite0 from scratch on the offline digits."""

import pytest

from keras_effnet.training import ExperimentConfig, evaluate, train


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_lite0_digits_48px_reaches_90_percent(tmp_path):
    # The default recipe (RMSProp, warmup + exponential decay, label smoothing,
    # weight decay, auto EMA); only size and length are chosen for CI.
    config = ExperimentConfig().replace(
        model={"name": "lite0"},
        data={"dataset": "digits", "image_size": 48, "batch_size": 32},
        run={"model_dir": str(tmp_path / "lite0"), "epochs": 12, "strategy": "cpu", "verbose": 2},
    )
    result = train(config)
    assert result.metrics["top1"] >= 0.90, result.summary()
    assert result.epochs_completed == 12 and result.num_replicas == 1
    # The saved model scores the same through the public evaluate().
    again = evaluate(result.best_model_path, "digits", "test")
    assert again["top1"] == pytest.approx(result.metrics["top1"])
    with open(result.labels_path) as f:
        assert len(f.read().split()) == 10
