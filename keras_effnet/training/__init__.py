"""Training: data-parallel EfficientNet recipe, evaluation, benchmarks.

from keras_effnet.training import ExperimentConfig, train, evaluate
cfg = ExperimentConfig().replace(data={"image_size": 64}, run={"model_dir": "runs/x", "epochs": 5})
result = train(cfg)          # TrainResult: model paths, labels path, metrics
evaluate(result.best_model_path, "digits", "test")
"""

from keras_effnet.training.config import ExperimentConfig
from keras_effnet.training.evaluation import evaluate
from keras_effnet.training.loop import TrainResult, train
from keras_effnet.training.sections import DataConfig, ModelConfig, OptimizerConfig, RunConfig

__all__ = [
    "DataConfig",
    "ExperimentConfig",
    "ModelConfig",
    "OptimizerConfig",
    "RunConfig",
    "TrainResult",
    "evaluate",
    "train",
]
