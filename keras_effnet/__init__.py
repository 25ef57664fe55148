"""keras-effnet: EfficientNet B0-B7 and Lite0-4 for Keras 3."""

__version__ = "0.1.0"
