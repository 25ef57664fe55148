"""Stochastic depth (drop-connect) for residual branches."""

import keras

from keras_effnet.core.layers.common import Tensor


@keras.saving.register_keras_serializable(package="keras_effnet")
class StochasticDepth(keras.layers.Layer):
    """Drops the whole residual branch of a sample with probability `rate`.

    During training each sample's branch is zeroed with probability `rate` and
    scaled by 1 / (1 - rate) otherwise (Huang et al., 2016); at inference it
    is the identity. Same semantics as keras.applications' per-sample
    `Dropout(noise_shape=(None, 1, 1, 1))`.

    Args:
        rate: drop probability in [0, 1).
        seed: optional integer seed.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=False) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        batch = keras.ops.shape(inputs)[0]
        noise_shape = (batch,) + (1,) * (len(inputs.shape) - 1)
        return keras.random.dropout(
            inputs, self.rate, noise_shape=noise_shape, seed=self.seed_generator
        )

    def compute_output_shape(self, input_shape) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
