"""`DataConfig`: the dataset, its input pipeline, augmentation and progressive learning."""

import dataclasses
import math

from keras_effnet.augment_spec import parse_augment
from keras_effnet.config_flags import option
from keras_effnet.training.sections.checks import check_range, fail, is_int


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Input pipeline.

    Attributes:
        dataset: "digits" (offline default), a directory of class folders, or
            a TFDS name.
        data_dir: TFDS data directory (None = TFDS default).
        image_size: square input side; None = auto (`recipe.auto_image_size`:
            64 for source images under 64 px, else their side rounded up to a
            multiple of 8, at most the variant's native resolution; with
            weights, the resolution they were trained at).
        batch_size: batch size per replica (global = this x replicas).
        augment: "auto", "none" or a comma list of crop, shift, flip,
            randaugment, mixup. "auto" (`recipe.auto_augment`) = "none" for
            digits (they fill their 8x8 frame), "shift" for images under
            64 px, "none" for runs under 2,000 steps, else "crop,flip" (wrong
            for digits or text in a folder: pass "shift").
        crop_min_area: smallest area fraction of the random crop; None = auto
            (0.5: gentle enough for objects that fill the frame).
        randaugment_magnitude: RandAugment `factor` in (0, 1].
        mixup_alpha: MixUp Beta(alpha, alpha) parameter.
        cache: cache the (encoded) examples in memory after the first epoch.
        progressive: "auto", "on" or "off": progressive learning (EfficientNetV2,
            Algorithm 1), image size and regularization (dropout,
            RandAugment, MixUp) growing over `progressive_stages` stages to
            the targets above; see `training.progressive`. "auto" = on from
            64 px, 2 epochs per stage and 2,000 steps.
        progressive_stages: number of stages M; None = auto (4).
        progressive_start_size: the first stage's image size; None = auto
            (half the target, a multiple of 8, at least 32).
    """

    dataset: str = option(
        "digits",
        '"digits" (offline), an image folder (<root>/<class>/*.jpg) or a TFDS name.',
        section="data",
    )
    data_dir: str | None = option(None, "TFDS data directory.", section="data")
    image_size: int | None = option(
        None,
        "Input side.",
        section="data",
        auto="64 for images under 64 px, else their side (multiple of 8) up to the variant's "
        "native resolution; with --weights the weights'",
        legacy_auto=(0,),
    )
    batch_size: int = option(64, "Batch size per replica (global = x replicas).", section="data")
    augment: str = option(
        "auto",
        '"auto", "none" or a comma list of crop,shift,flip,randaugment,mixup. Use "shift" for '
        "digits or text (a flip changes the class).",
        section="augmentation",
        auto="shift for images under 64 px; none for the digits and runs under 2,000 steps; "
        "else crop,flip",
    )
    crop_min_area: float | None = option(
        None,
        "Smallest area fraction of the random crop.",
        section="augmentation",
        auto="0.5 (paper: 0.08)",
        legacy_auto=(-1,),
    )
    randaugment_magnitude: float = option(
        0.5, "RandAugment factor in (0, 1].", section="augmentation"
    )
    mixup_alpha: float = option(0.2, "MixUp Beta(alpha, alpha).", section="augmentation")
    cache: bool = option(
        True, "Cache encoded examples in memory (--nocache for large datasets).", section="data"
    )
    progressive: str = option(
        "auto",
        "Progressive learning (EfficientNetV2): image size, dropout, RandAugment and MixUp grow "
        "over --progressive_stages stages to their targets.",
        section="augmentation",
        auto="on from 64 px, 2 epochs per stage and 2,000 steps",
        choices=("auto", "on", "off"),
    )
    progressive_stages: int | None = option(
        None, "Stages of --progressive.", section="augmentation", auto="4", legacy_auto=(0,)
    )
    progressive_start_size: int | None = option(
        None,
        "First stage's image size.",
        section="augmentation",
        auto="half the target, multiple of 8, >= 32",
        legacy_auto=(0,),
    )

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            fail("dataset", self.dataset, "a non-empty string")
        if self.image_size is not None and (not is_int(self.image_size) or self.image_size < 32):
            fail(
                "image_size", self.image_size, "auto (None: the native resolution) or an int >= 32"
            )
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            fail("batch_size", self.batch_size, "a positive int (per replica)")
        parse_augment(self.augment)
        if self.crop_min_area is not None:
            check_range("crop_min_area", self.crop_min_area, 0.0, 1.0, low_open=True)
        check_range("randaugment_magnitude", self.randaugment_magnitude, 0.0, 1.0, low_open=True)
        check_range("mixup_alpha", self.mixup_alpha, 0.0, math.inf, low_open=True, high_open=True)
        if self.progressive not in ("auto", "on", "off"):
            fail("progressive", self.progressive, '"auto", "on" or "off"')
        if self.progressive_stages is not None and (
            not is_int(self.progressive_stages) or self.progressive_stages < 1
        ):
            fail("progressive_stages", self.progressive_stages, "auto (None) or a positive int")
        if self.progressive_start_size is not None and (
            not is_int(self.progressive_start_size) or self.progressive_start_size < 32
        ):
            fail(
                "progressive_start_size",
                self.progressive_start_size,
                "auto (None) or an int >= 32",
            )
