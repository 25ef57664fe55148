"""data: the dataset and its input pipeline."""

from absl import flags

_DATASET = flags.DEFINE_string(
    "dataset",
    "digits",
    '"digits" (offline), an image folder (<root>/<class>/*.jpg) or a TFDS name.',
)
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data directory.")
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", 0, "Input side; 0 = the variant's native resolution."
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 64, "Batch size per replica (global = x replicas)."
)

_CACHE = flags.DEFINE_bool(
    "cache", True, "Cache encoded examples in memory (--nocache for large datasets)."
)
