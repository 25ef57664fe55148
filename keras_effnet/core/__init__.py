"""The model core: EfficientNet B0-B7, Lite0-4 and V2 from Keras 3 alone.

Nothing here imports TensorFlow, so the core runs on the TensorFlow, JAX and
PyTorch backends (tests/core/test_backends.py). The data flows one way:
`variants` (the tables) -> `scaling` (compound scaling) -> `builder` (a
`Plan` of blocks) -> `network` (the Keras graph of `layers`) -> `models` (the
public constructors); `weights`, `pretrained` and `checkpoints` load weights
into it, and `features`, `profile` and `graph` read it. The input path is
`keras_effnet.data`; training, export and the study build on both.
"""
