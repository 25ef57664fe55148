"""Training: data-parallel EfficientNet recipe, evaluation, benchmarks.

from keras_effnet.training import ExperimentConfig, train, evaluate
cfg = ExperimentConfig().replace(data={"image_size": 64}, run={"model_dir": "runs/x", "epochs": 5})
result = train(cfg)          # TrainResult: model paths, labels path, metrics
evaluate(result.best_model_path, "digits", "test")

Names are imported on first use (PEP 562), so the commands read
`training.sections` and `training.config` before their flags are parsed without
importing TensorFlow (issue 21).
"""

import importlib

# Public name -> the submodule that defines it.
_PUBLIC = {
    "DataConfig": "sections",
    "ExperimentConfig": "config",
    "ModelConfig": "sections",
    "OptimizerConfig": "sections",
    "RunConfig": "sections",
    "TrainResult": "loop",
    "evaluate": "evaluation",
    "train": "loop",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'keras_effnet.training' has no attribute {name!r}")
    from keras_effnet import _quiet_import

    _quiet_import.import_backend_quietly()
    value = getattr(importlib.import_module(f"keras_effnet.training.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
