"""augmentation: augmentation and progressive learning (EfficientNetV2)."""

from absl import flags

_AUGMENT = flags.DEFINE_string(
    "augment",
    "auto",
    '"auto" (digits: none; otherwise crop,flip), "none" or a comma list of crop,flip,randaugment,mixup. '
    'Use "crop" for digits or text (a flip changes the class).',
)
_CROP_MIN_AREA = flags.DEFINE_float(
    "crop_min_area",
    -1.0,
    "Smallest area fraction of the random crop; -1 = auto (0.5; paper: 0.08).",
)
_RANDAUGMENT_MAGNITUDE = flags.DEFINE_float(
    "randaugment_magnitude", 0.5, "RandAugment factor in (0, 1]."
)
_MIXUP_ALPHA = flags.DEFINE_float("mixup_alpha", 0.2, "MixUp Beta(alpha, alpha).")

_PROGRESSIVE = flags.DEFINE_enum(
    "progressive",
    "auto",
    ["auto", "on", "off"],
    "Progressive learning (EfficientNetV2): image size, dropout, RandAugment and MixUp grow over "
    "--progressive_stages stages to their targets. auto = on from 64 px, 2 epochs per stage and "
    "2,000 steps.",
)
_PROGRESSIVE_STAGES = flags.DEFINE_integer(
    "progressive_stages", 0, "Stages of --progressive; 0 = auto (4)."
)
_PROGRESSIVE_START_SIZE = flags.DEFINE_integer(
    "progressive_start_size",
    0,
    "First stage's image size; 0 = auto (half the target, multiple of 8, >= 32).",
)
