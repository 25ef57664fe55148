"""Input pipelines: preprocessing, augmentation and batching of every source.

Every dataset yields `(images, labels)`: float32 RGB pixels in 0..255 of shape
(B, H, W, 3) (the model rescales in-graph) and int32 labels (B,), or float32
one-hot / MixUp soft labels (B, classes) with `one_hot=True`.

Where examples come from (digits, image folders, TFDS; their splits) is
`keras_effnet.data.sources`; the resumable training stream is `keras_effnet.data.stream`.
The digits (8x8 gray, 0..16) are scaled to 0..255, made RGB and upscaled to
the model resolution.

Pipeline: source (encoded bytes or small arrays) -> cache -> shuffle -> decode,
random crop / shift / flip (train) or plain resize (eval) -> batch -> RandAugment ->
MixUp -> prefetch, all with AUTOTUNE parallelism.
"""

import keras
import tensorflow as tf

from keras_effnet.augment_spec import AUGMENTATIONS, parse_augment  # noqa: F401  (re-exported)
from keras_effnet.data import sources, stream

# The data API: what a dataset holds, described before anything is loaded.
from keras_effnet.data.sources import SPLITS, VALIDATION_FRACTION, DatasetInfo, dataset_info  # noqa: F401
from keras_effnet.errors import ConfigError

AUTOTUNE = tf.data.AUTOTUNE


def _random_crop(image, min_area, seed):
    """Inception-style crop: random area in [min_area, 1], aspect 3/4..4/3."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros([1, 0, 4]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=(0.75, 1.33),
        area_range=(min_area, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.slice(image, begin, size)


SHIFT_FRACTION = 0.125
SHIFT_SCALE = (0.85, 1.15)


def _random_shift(image, image_size, seed):
    """Scale in 0.85..1.15 about the centre, then translation by up to 1/8 of the side.

    The augmentation of small-image benchmarks (pad 4 px and crop, as on
    32 px CIFAR; the scale is ours), zero-padded. No flip, so it suits
    digits and text (docs/training.md, "Small images").
    """
    scale_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    scale = tf.random.stateless_uniform([], scale_seed, *SHIFT_SCALE)
    side = tf.cast(tf.round(scale * image_size), tf.int32)
    image = tf.image.resize(image, tf.stack([side, side]))
    pad = max(1, int(round(image_size * SHIFT_FRACTION)))
    frame = image_size + 2 * pad  # Centre-crops a scaled-up image, pads a smaller one.
    image = tf.image.resize_with_crop_or_pad(image, frame, frame)
    return tf.image.stateless_random_crop(image, [image_size, image_size, 3], crop_seed)


def _preprocess(image_size, encoded, augment, crop_min_area, randaugment):
    """Per-example map: decode, (crop), resize, (shift, flip, RandAugment) -> float32 RGB 0..255."""

    def fn(image, label, seeds):
        if encoded:
            image = tf.io.decode_image(image, channels=3, expand_animations=False)
            image.set_shape([None, None, 3])
        else:  # Tiny arrays (digits): upscale first so the crop is not 1-pixel coarse.
            image = tf.image.grayscale_to_rgb(tf.image.resize(image, (image_size, image_size)))
        if "crop" in augment:
            image = _random_crop(image, crop_min_area, seeds[0])
            image.set_shape([None, None, 3])
        image = tf.image.resize(image, (image_size, image_size), antialias=True)
        image = tf.clip_by_value(image, 0.0, 255.0)
        if "shift" in augment:
            image = _random_shift(image, image_size, seeds[0])
        if "flip" in augment:
            image = tf.image.stateless_random_flip_left_right(image, seeds[1])
        if randaugment is not None:  # Per image: one call picks one op set.
            image = randaugment(image, training=True)
        return tf.ensure_shape(image, [image_size, image_size, 3]), label

    return fn


def _mixup(alpha, seed):
    """Batch MixUp (Zhang et al. 2018) with stateless draws keyed by the batch index.

    Each batch is mixed with its own reversal, weight lambda ~ Beta(alpha, alpha)
    per example (as keras.layers.MixUp), so a resumed stream repeats exactly.
    """

    def fn(images, labels, index):
        n = tf.shape(images)[0]
        key = tf.stack([tf.cast(seed, tf.int64) + 2, index])
        g1 = tf.random.stateless_gamma([n], key, alpha=alpha)
        g2 = tf.random.stateless_gamma([n], key + [0, 1 << 40], alpha=alpha)
        lam = g1 / (g1 + g2)
        mixed = lam[:, None, None, None] * images + (1 - lam[:, None, None, None]) * images[::-1]
        return tf.clip_by_value(mixed, 0.0, 255.0), lam[:, None] * labels + (
            1 - lam[:, None]
        ) * labels[::-1]

    return fn


def load_dataset(
    name,
    split,
    image_size,
    batch_size,
    *,
    data_dir=None,
    shuffle=False,
    augment=None,
    drop_remainder=False,
    seed=0,
    cache=True,
    repeat=False,
    one_hot=False,
    num_classes=None,
    crop_min_area=0.25,
    randaugment_magnitude=0.5,
    mixup_alpha=0.2,
    skip_examples=0,
    reshuffle=True,
):
    """Builds a batched tf.data pipeline.

    Args:
        name: "digits", an image folder path or a TFDS name.
        split: "train", "validation" or "test".
        image_size: output side (square).
        batch_size: batch size of the returned dataset (the global batch
            under a tf.distribute strategy).
        data_dir: TFDS data directory.
        shuffle: shuffle examples. With `repeat` or `reshuffle=False`,
            digits and folders follow a stateless permutation of (seed,
            pass), the same in every process; TFDS sources shuffle files and
            a buffer.
        reshuffle: without `repeat`, a new order on every iteration of the
            dataset (False: the same seeded order every time). With `repeat`,
            digits and folders give pass p the permutation of (seed, p).
        augment: None, "none" or names from "crop,shift,flip,randaugment,mixup"
            ("auto" is resolved by the training config, not here).
        drop_remainder: drop the last partial batch.
        seed: seed of shuffling and augmentation.
        cache: cache the encoded source in memory (decode runs every epoch).
        repeat: repeat forever.
        one_hot: float32 one-hot labels (B, classes); required by "mixup".
        num_classes: classes for `one_hot` (default: from `dataset_info`).
        crop_min_area, randaugment_magnitude, mixup_alpha: augmentation knobs.
        skip_examples: with `repeat`, start the stream after this many
            examples (a resumed run passes the examples it already trained
            on). Shuffling, crops, flips and MixUp are functions of the seed
            and the example's position in the stream, so the resumed stream
            equals the uninterrupted one from that point (RandAugment draws
            from a stateful generator and does not repeat exactly).

    Returns:
        A `tf.data.Dataset` of (images, labels).
    """
    augment = parse_augment(augment)
    if "auto" in augment:
        raise ConfigError(
            '`augment` "auto" is resolved by the training config. Received: augment="auto"'
        )
    if "mixup" in augment and not one_hot:
        raise ConfigError(
            "MixUp makes soft labels: pass one_hot=True. Received: augment with mixup, one_hot=False"
        )
    if not isinstance(image_size, int) or image_size < 1:
        raise ConfigError(
            f"`image_size` must be a positive int. Received: image_size={image_size!r}"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(
            f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}"
        )
    if skip_examples and not repeat:
        raise ConfigError(
            f"`skip_examples` needs repeat=True. Received: skip_examples={skip_examples}"
        )
    # In-memory sources shuffle statelessly, by (seed, position) alone, when
    # repeating or when one fixed order is asked for: a shuffled draw (the
    # int8 calibration images, BN re-estimation) must not depend on
    # TensorFlow's global seed, which tf.data's `shuffle` mixes in
    # (`keras.utils.set_random_seed` before an export changed the calibration
    # set, and B0's int8 top-1 by 0.7 pt; docs/export.md, "Why B models lose accuracy under post-training int8"). A
    # non-repeating dataset that reshuffles on every iteration (an epoch per
    # `fit` pass) needs tf.data's state.
    stateless = shuffle and (repeat or not reshuffle)
    table = sources.indexed_source(name, split) if stateless else None
    if table is not None:
        ds, encoded = stream.positional_stream(*table, seed, skip_examples), table[2]
        if not repeat:
            ds = ds.take(len(table[1]))
    else:
        ds, encoded = sources.source(name, split, data_dir, shuffle, seed)
        if cache:
            ds = ds.cache()
        if shuffle:
            size = ds.cardinality()
            buffer = int(size) if 0 < size <= 50_000 else 10_000
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=reshuffle)
        if repeat:
            ds = ds.repeat()
        # A streamed (TFDS) source resumes by skipping, before decoding; its
        # shuffle order depends on how many iterators were made, so a resumed
        # TFDS run is close to, not equal to, the uninterrupted one.
        ds = ds.skip(skip_examples)
        # Per-example stateless seeds: (seed, position) pairs, so runs repeat.
        ds = tf.data.Dataset.zip(ds, stream.position_seeds(seed, skip_examples)).map(
            lambda x, s: (*x, s)
        )
    randaugment = None
    if "randaugment" in augment:
        randaugment = keras.layers.RandAugment(
            value_range=(0, 255), factor=randaugment_magnitude, seed=seed
        )
    ds = ds.map(
        _preprocess(image_size, encoded, augment, crop_min_area, randaugment),
        num_parallel_calls=AUTOTUNE,
    )
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if one_hot:
        classes = num_classes or dataset_info(name, data_dir).num_classes
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, classes, dtype=tf.float32)))
    if "mixup" in augment:
        if skip_examples % batch_size:
            raise ConfigError(
                f"`skip_examples` must be a multiple of batch_size with MixUp. "
                f"Received: skip_examples={skip_examples}, batch_size={batch_size}"
            )
        batches = tf.data.Dataset.counter(start=skip_examples // batch_size)
        mix = _mixup(mixup_alpha, seed)
        ds = tf.data.Dataset.zip(ds, batches).map(
            lambda xy, i: mix(*xy, i), num_parallel_calls=AUTOTUNE
        )
    options = tf.data.Options()
    # Sources are in-memory or a few files: shard elements, not files.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(AUTOTUNE)
