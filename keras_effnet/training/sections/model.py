"""`ModelConfig`: the network, its start weights and how its layers train."""

import dataclasses

from keras_effnet.config_flags import option
from keras_effnet.core.variants import get_variant
from keras_effnet.errors import ConfigError
from keras_effnet.training.sections.checks import check_range, fail, is_int


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which network and how its layers are set up for training.

    Attributes:
        name: variant, "b0".."b7" or "lite0".."lite4".
        width: width coefficient override (None = the variant's).
        depth: depth coefficient override (None = the variant's).
        weights: None, "imagenet", "timm:<architecture>.<tag>", or a
            .safetensors (timm format) / .keras / weights file to start from;
            layers are matched by name, mismatching shapes (the classifier of
            another dataset) are left at their initial values.
        dropout_rate: dropout before the classifier (None = the variant's).
        drop_connect_rate: stochastic-depth rate of the last block; None = auto
            (scaled with the run's length, see recipe.auto_drop_connect).
        sync_bn: synchronize BatchNorm statistics across replicas.
        freeze_bn: keep every BatchNorm layer in inference mode; None = auto
            (on with `weights`, off without).
        head_epochs: epochs of head-only training (backbone frozen) before
            the whole network trains; None = auto (with `weights`: a fifth of
            the run, 1 to 5 epochs; without: 0).
        stem_strides: the stem conv's stride, 2 (the paper's) or 1 (16x
            downsampling instead of 32x); None = auto (`recipe.auto_stem_strides`).
    """

    name: str = option("lite0", "Variant: b0..b7, lite0..lite4.", section="model", flag="model")
    width: float | None = option(
        None,
        "Width coefficient override.",
        section="model",
        auto="the variant's",
        legacy_auto=(0,),
    )
    depth: float | None = option(
        None,
        "Depth coefficient override.",
        section="model",
        auto="the variant's",
        legacy_auto=(0,),
    )
    weights: str | None = option(
        None,
        'Start from: "imagenet" (every variant), "timm:<architecture>.<tag>", or a timm-format '
        ".safetensors / .keras / weights file to fine-tune.",
        section="model",
    )
    dropout_rate: float | None = option(
        None,
        "Dropout before the classifier.",
        section="model",
        auto="the variant's",
        legacy_auto=(-1,),
    )
    drop_connect_rate: float | None = option(
        None,
        "Stochastic depth rate of the last block.",
        section="model",
        auto="0.2 x run steps / 10k, max 0.2",
        legacy_auto=(-1,),
    )
    sync_bn: bool = option(
        False, "Synchronize BatchNorm statistics across replicas.", section="model"
    )
    freeze_bn: bool | None = option(
        None,
        "Keep BatchNorm layers frozen (inference mode).",
        section="model",
        auto="on with --weights",
    )
    head_epochs: int | None = option(
        None,
        "Head-only epochs (backbone frozen) before the whole network trains.",
        section="model",
        auto="with --weights a fifth of the run, 1-5 epochs; else 0",
        legacy_auto=(-1,),
    )

    stem_strides: int | None = option(
        None,
        "Stride of the stem conv: 2 (the paper's, 32x downsampling) or 1 (16x, for small inputs).",
        section="model",
        auto="1 for inputs under 64 px (the last feature map then is 2x2, not 1x1), else 2",
    )

    def __post_init__(self):
        try:
            get_variant(self.name)
        except ValueError as e:
            raise ConfigError(f"Bad --model: {e}") from None
        for name in ("width", "depth"):
            if getattr(self, name) is not None:
                check_range(name, getattr(self, name), 0.0, 10.0, low_open=True)
        if self.dropout_rate is not None:
            check_range("dropout_rate", self.dropout_rate, 0.0, 1.0, high_open=True)
        if self.drop_connect_rate is not None:
            check_range("drop_connect_rate", self.drop_connect_rate, 0.0, 1.0, high_open=True)
        if self.weights is not None and (not isinstance(self.weights, str) or not self.weights):
            fail("weights", self.weights, 'None, "imagenet" or a file path')
        if self.freeze_bn not in (None, True, False):
            fail("freeze_bn", self.freeze_bn, "auto (None), True or False")
        if self.stem_strides not in (None, 1, 2):
            fail("stem_strides", self.stem_strides, "auto (None), 1 or 2")
        if self.head_epochs is not None and (not is_int(self.head_epochs) or self.head_epochs < 0):
            fail("head_epochs", self.head_epochs, "auto (None) or an int >= 0")
