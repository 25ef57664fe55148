"""Input pipelines: offline digits, image folders and TFDS datasets.

Every dataset yields `(images, labels)`: float32 RGB pixels in 0..255 of shape
(B, H, W, 3) (the model rescales in-graph) and int32 labels (B,), or float32
one-hot / MixUp soft labels (B, classes) with `one_hot=True`.

Sources, chosen by `name`:
  * "digits": scikit-learn's bundled 8x8 digits (0..16 gray), scaled to 0..255,
    made RGB and upscaled to the model resolution; a fixed stratified split
    70/15/15 % into train/validation/test. Runs anywhere, no download.
  * an existing directory: an image folder, either `root/<class>/*.jpg` (split
    80/10/10 % per class, deterministically) or `root/<split>/<class>/*.jpg`
    with split in train/validation/test (the layout of TFDS's ImageFolder).
    Every file is decoded once per process before use; a file that does not
    decode as JPEG/PNG/GIF/BMP raises a ValueError naming it (we chose a clear
    error over a silent skip: a bad file is usually a data bug).
  * anything else: a TFDS dataset name, prepared in `data_dir` (downloaded on
    first use if the machine is online). Splits missing from the dataset are
    carved from "train" (see `_tfds_splits`).

Pipeline: source (encoded bytes or small arrays) -> cache -> shuffle -> decode,
random crop / flip (train) or plain resize (eval) -> batch -> RandAugment ->
MixUp -> prefetch, all with AUTOTUNE parallelism.
"""

import dataclasses
import functools
import os

import keras
import numpy as np
import tensorflow as tf

from keras_effnet.training.config import ConfigError, parse_augment

SPLITS = ("train", "validation", "test")
_DIGITS_FRACTIONS = (0.70, 0.15)
_FOLDER_FRACTIONS = (0.80, 0.10)
_SPLIT_SEED = 1234  # Fixed: the split is part of the dataset, not of the run.
VALIDATION_FRACTION = 0.1  # Held out from train when a dataset has no validation split.
AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset holds.

    Attributes:
        name: the dataset argument as given.
        kind: "digits", "folder" or "tfds".
        num_classes: number of classes.
        class_names: tuple of class names (index = label).
        splits: dict split name -> number of examples (0 = absent).
        sources: dict split name -> where the split comes from (recorded in
            config.json and printed when a run starts).
    """

    name: str
    kind: str
    num_classes: int
    class_names: tuple
    splits: dict
    sources: dict = dataclasses.field(default_factory=dict)


def _kind(name):
    if name == "digits":
        return "digits"
    if os.path.isdir(name):
        return "folder"
    if os.sep in name or name.startswith("."):
        raise ConfigError(f"Dataset directory not found. Received: dataset={name!r}")
    return "tfds"


def _stratified_split(labels, fractions, split):
    """Indices of `split` in a per-class deterministic shuffle of `labels`."""
    rng = np.random.default_rng(_SPLIT_SEED)
    chosen = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        n_train = int(round(len(idx) * fractions[0]))
        n_val = int(round(len(idx) * fractions[1]))
        # Every class in every split when possible; fractions summing to 1
        # make a train/validation split with nothing left for test.
        reserve = 2 if sum(fractions) < 1 - 1e-9 else 1
        if len(idx) > reserve:
            n_train = min(max(n_train, 1), len(idx) - reserve)
            n_val = min(max(n_val, 1), len(idx) - n_train - (reserve - 1))
        if reserve == 1:
            n_val = len(idx) - n_train
        bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_val),
                  "test": (n_train + n_val, len(idx))}[split]
        chosen.append(idx[bounds[0]:bounds[1]])
    return np.sort(np.concatenate(chosen))


@functools.lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.clip(digits.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    return images[..., None], digits.target.astype(np.int32)


def _list_class_dirs(root):
    classes = sorted(
        d for d in os.listdir(root) if not d.startswith(".") and os.path.isdir(os.path.join(root, d))
    )
    if not classes:
        raise ConfigError(
            f"Image folder has no class subdirectories (expected <root>/<class>/<image>). "
            f"Received: dataset={root!r}"
        )
    return classes


def _list_files(directory):
    return sorted(
        os.path.join(directory, f) for f in os.listdir(directory)
        if not f.startswith(".") and os.path.isfile(os.path.join(directory, f))
    )


def _check_images_decode(paths):
    """Decodes every file once; raises ValueError naming the ones that fail."""
    key = tuple((p, os.path.getsize(p), os.path.getmtime(p)) for p in paths)
    if key in _checked_files:
        return
    path_tensor = tf.constant(paths)

    def decode(i):
        image = tf.io.decode_image(
            tf.io.read_file(path_tensor[i]), channels=3, expand_animations=False)
        return i, tf.shape(image)

    ok = tf.data.Dataset.range(len(paths)).map(decode, num_parallel_calls=AUTOTUNE)
    good = {int(i) for i, _ in ok.ignore_errors()}
    bad = [p for i, p in enumerate(paths) if i not in good]
    if bad:
        shown = ", ".join(repr(p) for p in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ConfigError(
            f"{len(bad)} file(s) in the image folder are not decodable JPEG/PNG/GIF/BMP images: "
            f"{shown}. Remove or fix them."
        )
    _checked_files.add(key)


_checked_files = set()


def _split_labels(labels, fractions):
    """{split: indices} of a stratified, seeded split of `labels` by `fractions`."""
    return {split: _stratified_split(labels, fractions, split) for split in SPLITS}


def _class_files(root, classes, present):
    paths, labels = [], []
    for label, name in enumerate(classes):
        if name in present:
            files = _list_files(os.path.join(root, name))
            paths += files
            labels += [label] * len(files)
    return paths, np.array(labels, np.int32)


@functools.lru_cache(maxsize=8)
def _folder_index(root):
    """(class_names, {split: (paths, labels)}, {split: source}) of an image folder.

    A missing validation split is held out from train (stratified, seeded
    with `_SPLIT_SEED`), never taken from test; a missing test split stays
    empty. A folder without split directories is split 80/10/10 per class.
    """
    root = os.path.abspath(root)
    top = _list_class_dirs(root)
    if set(top) <= set(SPLITS) and "train" not in top:
        raise ConfigError(
            f"Image folder has split folders ({', '.join(sorted(top))}) but no train/ folder: "
            f"training and int8 calibration need train/<class>/<image>. Received: dataset={root!r}")
    if "train" in top and set(top) <= set(SPLITS):
        classes = _list_class_dirs(os.path.join(root, "train"))
        index, sources = {}, {}
        for split in top:
            split_classes = _list_class_dirs(os.path.join(root, split))
            extra = sorted(set(split_classes) - set(classes))
            if extra:
                raise ConfigError(
                    f"Split {split!r} has classes absent from 'train': {extra}. Received: dataset={root!r}"
                )
            index[split] = _class_files(os.path.join(root, split), classes, split_classes)
            sources[split] = f"{split}/ folder"
        if "validation" not in index:
            paths, labels = index["train"]
            fraction = VALIDATION_FRACTION
            parts = _split_labels(labels, (1.0 - fraction, fraction))
            for split, part in (("train", "train"), ("validation", "validation")):
                index[split] = ([paths[i] for i in parts[part]], labels[parts[part]])
            sources["train"] = f"train/ folder minus {fraction:.0%} held out for validation"
            sources["validation"] = (
                f"{fraction:.0%} of train/ folder, stratified per class, seed {_SPLIT_SEED}")
        if "test" not in index:
            index["test"] = ([], np.zeros([0], np.int32))
            sources["test"] = "none (the folder has no test/ directory)"
        return tuple(classes), index, sources
    for name in top:
        if not _list_files(os.path.join(root, name)):
            raise ConfigError(f"Class folder {os.path.join(root, name)!r} holds no files.")
    paths, labels = _class_files(root, top, top)
    index, sources = {}, {}
    for split, chosen in _split_labels(labels, _FOLDER_FRACTIONS).items():
        index[split] = ([paths[i] for i in chosen], labels[chosen])
    share = dict(zip(SPLITS, (*_FOLDER_FRACTIONS, 1 - sum(_FOLDER_FRACTIONS))))
    for split in SPLITS:
        sources[split] = f"{share[split]:.0%} of <root>/<class>/ files, stratified, seed {_SPLIT_SEED}"
    return tuple(top), index, sources


def _tfds_builder(name, data_dir):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ConfigError(
            "Unknown dataset: not 'digits', not an existing directory and not a TFDS name. "
            f"Received: dataset={name!r}"
        ) from None
    if not builder.info.splits:
        try:
            builder.download_and_prepare()
        except Exception as e:  # Offline machines, missing manual downloads.
            raise ConfigError(
                f"Could not prepare TFDS dataset {name!r} in data_dir={data_dir!r}: "
                f"{type(e).__name__}: {str(e)[:300]}. Prepare it on a machine with network "
                "access (`tfds build`) and pass --data_dir."
            ) from None
    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2:
        raise ConfigError(f"TFDS dataset {name!r} has no (image, label) supervised keys.")
    return builder


def _tfds_splits(available):
    """Maps our three splits to TFDS split strings (None = the split is absent).

    A missing validation split is the last 10 % of train, never test. With
    train and validation but no test (ImageNet style) there is no test split.
    A dataset with only train is sliced 80/10/10.
    """
    if "validation" in available:
        return {"train": "train", "validation": "validation",
                "test": "test" if "test" in available else None}
    if "test" in available:
        return {"train": "train[:90%]", "validation": "train[90%:]", "test": "test"}
    return {"train": "train[:80%]", "validation": "train[80%:90%]", "test": "train[90%:]"}


def dataset_info(name, data_dir=None):
    """Describes a dataset (see the module docstring for `name`).

    Returns:
        A `DatasetInfo`.

    Raises:
        ValueError: unknown name, unusable folder or unpreparable TFDS dataset.
    """
    kind = _kind(name)
    if kind == "digits":
        _, labels = _digits()
        splits = {s: len(_stratified_split(labels, _DIGITS_FRACTIONS, s)) for s in SPLITS}
        share = dict(zip(SPLITS, (*_DIGITS_FRACTIONS, 1 - sum(_DIGITS_FRACTIONS))))
        sources = {s: f"{share[s]:.0%} of scikit-learn digits, stratified, seed {_SPLIT_SEED}"
                   for s in SPLITS}
        return DatasetInfo(name, kind, 10, tuple(str(i) for i in range(10)), splits, sources)
    if kind == "folder":
        classes, index, sources = _folder_index(name)
        splits = {s: len(index[s][0]) for s in SPLITS}
        return DatasetInfo(name, kind, len(classes), classes, splits, sources)
    builder = _tfds_builder(name, data_dir)
    label = builder.info.features[builder.info.supervised_keys[1]]
    mapping = _tfds_splits(set(builder.info.splits))
    splits = {s: builder.info.splits[mapping[s]].num_examples if mapping[s] else 0 for s in SPLITS}
    sources = {s: f"TFDS split {mapping[s]!r}" if mapping[s] else "none (the dataset has no test split)"
               for s in SPLITS}
    return DatasetInfo(name, kind, label.num_classes, tuple(label.names), splits, sources)


def _source(name, split, data_dir, shuffle, seed):
    """(dataset of (encoded image or uint8 array, int32 label), is_encoded)."""
    if split not in SPLITS:
        raise ConfigError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    table = _indexed_source(name, split)
    if table is not None:
        values, labels, encoded = table
        ds = tf.data.Dataset.from_tensor_slices((values, labels))
        if encoded:
            ds = ds.map(lambda p, y: (tf.io.read_file(p), y), num_parallel_calls=AUTOTUNE)
        return ds, encoded
    import tensorflow_datasets as tfds

    builder = _tfds_builder(name, data_dir)
    image_key, label_key = builder.info.supervised_keys
    tfds_split = _tfds_splits(set(builder.info.splits))[split]
    if tfds_split is None:
        raise ConfigError(f"TFDS dataset {name!r} has no {split!r} split. "
                          f"Received: dataset={name!r}, split={split!r}")
    ds = builder.as_dataset(
        split=tfds_split,
        decoders={image_key: tfds.decode.SkipDecoding()},
        shuffle_files=shuffle,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )
    return ds.map(lambda ex: (ex[image_key], tf.cast(ex[label_key], tf.int32))), True


def _indexed_source(name, split):
    """(values, labels, is_encoded) of an in-memory source (digits, folders); None for TFDS."""
    kind = _kind(name)
    if kind == "digits":
        images, labels = _digits()
        idx = _stratified_split(labels, _DIGITS_FRACTIONS, split)
        return images[idx], labels[idx], False
    if kind == "folder":
        _, index, sources = _folder_index(name)
        paths, labels = index[split]
        if not paths:
            raise ConfigError(f"Image folder has no {split!r} split ({sources[split]}). "
                              f"Received: dataset={name!r}, split={split!r}")
        _check_images_decode(paths)
        return np.array(paths), labels, True
    return None


def _positional_stream(values, labels, encoded, seed, start):
    """Endless training stream where example g is a pure function of (seed, g).

    Pass p = g // n visits the examples in the order of a stateless random
    permutation keyed by (seed, p) (`tf.random.experimental.index_shuffle`),
    so the stream from position `start` on is the same whether a run started
    there or got there: resuming is exact. Yields (image or file bytes,
    label, augmentation seeds).
    """
    n = len(labels)
    values, labels = tf.constant(values), tf.constant(labels)

    def example(g):
        p, i = g // n, g % n
        j = tf.random.experimental.index_shuffle(
            i, seed=tf.stack([tf.cast(seed, tf.int64), p]), max_index=tf.constant(n - 1, tf.int64))
        x = tf.io.read_file(values[j]) if encoded else values[j]
        return x, labels[j], tf.stack([[seed, g], [seed + 1, g]])

    return tf.data.Dataset.counter(start=start).map(example, num_parallel_calls=AUTOTUNE)


def _random_crop(image, min_area, seed):
    """Inception-style crop: random area in [min_area, 1], aspect 3/4..4/3."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.zeros([1, 0, 4]), seed=seed,
        min_object_covered=0.0, aspect_ratio_range=(0.75, 1.33),
        area_range=(min_area, 1.0), max_attempts=10, use_image_if_no_bounding_boxes=True,
    )
    return tf.slice(image, begin, size)


def _preprocess(image_size, encoded, augment, crop_min_area, randaugment):
    """Per-example map: decode, (crop), resize, (flip, RandAugment) -> float32 RGB 0..255."""

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
        return tf.clip_by_value(mixed, 0.0, 255.0), lam[:, None] * labels + (1 - lam[:, None]) * labels[::-1]

    return fn


def load_dataset(name, split, image_size, batch_size, *, data_dir=None, shuffle=False,
                 augment=None, drop_remainder=False, seed=0, cache=True, repeat=False,
                 one_hot=False, num_classes=None, crop_min_area=0.25,
                 randaugment_magnitude=0.5, mixup_alpha=0.2, skip_examples=0, reshuffle=True):
    """Builds a batched tf.data pipeline.

    Args:
        name: "digits", an image folder path or a TFDS name.
        split: "train", "validation" or "test".
        image_size: output side (square).
        batch_size: batch size of the returned dataset (the global batch
            under a tf.distribute strategy).
        data_dir: TFDS data directory.
        shuffle: shuffle examples.
        reshuffle: with `shuffle`, a new order on every pass (False: every
            iteration of the dataset yields the same seeded order).
        augment: None, "none" or names from "crop,flip,randaugment,mixup"
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
        raise ConfigError('`augment` "auto" is resolved by the training config. Received: augment="auto"')
    if "mixup" in augment and not one_hot:
        raise ConfigError(
            "MixUp makes soft labels: pass one_hot=True. Received: augment with mixup, one_hot=False")
    if not isinstance(image_size, int) or image_size < 1:
        raise ConfigError(f"`image_size` must be a positive int. Received: image_size={image_size!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}")
    if skip_examples and not repeat:
        raise ConfigError(f"`skip_examples` needs repeat=True. Received: skip_examples={skip_examples}")
    table = _indexed_source(name, split) if shuffle and repeat else None
    if table is not None:
        ds, encoded = _positional_stream(*table, seed, skip_examples), table[2]
    else:
        ds, encoded = _source(name, split, data_dir, shuffle, seed)
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
        seeds = tf.data.Dataset.counter(start=skip_examples).map(
            lambda i: tf.stack([[seed, i], [seed + 1, i]]))
        ds = tf.data.Dataset.zip(ds, seeds).map(lambda x, s: (*x, s))
    randaugment = None
    if "randaugment" in augment:
        randaugment = keras.layers.RandAugment(
            value_range=(0, 255), factor=randaugment_magnitude, seed=seed)
    ds = ds.map(_preprocess(image_size, encoded, augment, crop_min_area, randaugment),
                num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if one_hot:
        classes = num_classes or dataset_info(name, data_dir).num_classes
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, classes, dtype=tf.float32)))
    if "mixup" in augment:
        if skip_examples % batch_size:
            raise ConfigError(f"`skip_examples` must be a multiple of batch_size with MixUp. "
                              f"Received: skip_examples={skip_examples}, batch_size={batch_size}")
        batches = tf.data.Dataset.counter(start=skip_examples // batch_size)
        mix = _mixup(mixup_alpha, seed)
        ds = tf.data.Dataset.zip(ds, batches).map(lambda xy, i: mix(*xy, i), num_parallel_calls=AUTOTUNE)
    options = tf.data.Options()
    # Sources are in-memory or a few files: shard elements, not files.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(AUTOTUNE)
