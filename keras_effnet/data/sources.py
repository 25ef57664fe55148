"""Where examples come from: the split tables of digits, image folders and TFDS.

Sources, chosen by `name`:
  * "digits": scikit-learn's bundled 8x8 digits (0..16 gray); a fixed
    stratified split 70/15/15 % into train/validation/test. Runs anywhere, no
    download.
  * an existing directory: an image folder, either `root/<class>/*.jpg` (split
    80/10/10 % per class, deterministically) or `root/<split>/<class>/*.jpg`
    with split in train/validation/test (the layout of TFDS's ImageFolder).
    Every file is decoded once per process before use; a file that does not
    decode as JPEG/PNG/GIF/BMP raises a ValueError naming it (we chose a clear
    error over a silent skip: a bad file is usually a data bug).
  * anything else: a TFDS dataset name, prepared in `data_dir` (downloaded on
    first use if the machine is online). Splits missing from the dataset are
    carved from "train" (see `_tfds_splits`).

`dataset_info` describes a dataset; `indexed_source` gives the in-memory
table (values, labels) of digits and folders, which the positional training
stream (`keras_effnet.data.stream`) indexes; `source` gives a `tf.data` source of
any dataset. Preprocessing and batching are in `keras_effnet.data`.
"""

import dataclasses
import functools
import os

import numpy as np
import tensorflow as tf

from keras_effnet.errors import ConfigError

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
        image_side: the shorter side of the source images (the median of a
            sample of training images for a folder); None where unknown (a
            TFDS dataset of varying sizes). The auto resolution follows it.
    """

    name: str
    kind: str
    num_classes: int
    class_names: tuple
    splits: dict
    sources: dict = dataclasses.field(default_factory=dict)
    image_side: int | None = None


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
        bounds = {
            "train": (0, n_train),
            "validation": (n_train, n_train + n_val),
            "test": (n_train + n_val, len(idx)),
        }[split]
        chosen.append(idx[bounds[0] : bounds[1]])
    return np.sort(np.concatenate(chosen))


@functools.lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits  # Deferred: only "digits" needs scikit-learn.

    digits = load_digits()
    images = np.clip(digits.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    return images[..., None], digits.target.astype(np.int32)


def _list_class_dirs(root):
    classes = sorted(
        d
        for d in os.listdir(root)
        if not d.startswith(".") and os.path.isdir(os.path.join(root, d))
    )
    if not classes:
        raise ConfigError(
            f"Image folder has no class subdirectories (expected <root>/<class>/<image>). "
            f"Received: dataset={root!r}"
        )
    return classes


def _list_files(directory):
    return sorted(
        os.path.join(directory, f)
        for f in os.listdir(directory)
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
            tf.io.read_file(path_tensor[i]), channels=3, expand_animations=False
        )
        return i, tf.shape(image)

    ok = tf.data.Dataset.range(len(paths)).map(decode, num_parallel_calls=AUTOTUNE)
    good = {int(i) for i, _ in ok.ignore_errors()}
    bad = [p for i, p in enumerate(paths) if i not in good]
    if bad:
        shown = ", ".join(repr(p) for p in bad[:5]) + (
            f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        )
        raise ConfigError(
            f"{len(bad)} file(s) in the image folder are not decodable JPEG/PNG/GIF/BMP images: "
            f"{shown}. Remove or fix them."
        )
    _checked_files.add(key)


_checked_files = set()
SIDE_SAMPLE = 16


@functools.lru_cache(maxsize=8)
def _median_side(paths, sample=SIDE_SAMPLE):
    """Median shorter side of `sample` files spread over `paths` (None for no files)."""
    if not paths:
        return None
    picked = paths[:: max(1, len(paths) // sample)][:sample]
    sides = []
    for path in picked:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        sides.append(min(int(d) for d in image.shape[:2]))
    return int(np.median(sides))


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
            f"training and int8 calibration need train/<class>/<image>. Received: dataset={root!r}"
        )
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
                f"{fraction:.0%} of train/ folder, stratified per class, seed {_SPLIT_SEED}"
            )
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
        sources[split] = (
            f"{share[split]:.0%} of <root>/<class>/ files, stratified, seed {_SPLIT_SEED}"
        )
    return tuple(top), index, sources


def _missing_module(error):
    """The module name of a ModuleNotFoundError in `error`'s chain, else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ModuleNotFoundError) and error.name:
            return error.name
        error = error.__cause__ or error.__context__
    return None


def _tfds_builder(name, data_dir):
    import tensorflow_datasets as tfds  # Heavy (seconds): only TFDS names need it.

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
            missing = _missing_module(e)
            if missing:  # Not the network: a module TFDS imports only when it prepares data.
                raise ConfigError(
                    f"Could not prepare TFDS dataset {name!r}: the Python module {missing!r} is "
                    f"not installed (TFDS needs it to prepare this dataset). "
                    f"`pip install {missing.split('.')[0]}` and run again."
                ) from None
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
        return {
            "train": "train",
            "validation": "validation",
            "test": "test" if "test" in available else None,
        }
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
        sources = {
            s: f"{share[s]:.0%} of scikit-learn digits, stratified, seed {_SPLIT_SEED}"
            for s in SPLITS
        }
        labels = tuple(str(i) for i in range(10))
        return DatasetInfo(name, kind, 10, labels, splits, sources, image_side=8)
    if kind == "folder":
        classes, index, sources = _folder_index(name)
        splits = {s: len(index[s][0]) for s in SPLITS}
        side = _median_side(tuple(index["train"][0]))
        return DatasetInfo(name, kind, len(classes), classes, splits, sources, image_side=side)
    builder = _tfds_builder(name, data_dir)
    label = builder.info.features[builder.info.supervised_keys[1]]
    mapping = _tfds_splits(set(builder.info.splits))
    splits = {s: builder.info.splits[mapping[s]].num_examples if mapping[s] else 0 for s in SPLITS}
    sources = {
        s: f"TFDS split {mapping[s]!r}" if mapping[s] else "none (the dataset has no test split)"
        for s in SPLITS
    }
    shape = getattr(builder.info.features[builder.info.supervised_keys[0]], "shape", None)
    side = min(shape[:2]) if shape and None not in shape[:2] else None
    return DatasetInfo(
        name, kind, label.num_classes, tuple(label.names), splits, sources, image_side=side
    )


def source(name, split, data_dir, shuffle, seed):
    """(dataset of (encoded image or uint8 array, int32 label), is_encoded)."""
    if split not in SPLITS:
        raise ConfigError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    table = indexed_source(name, split)
    if table is not None:
        values, labels, encoded = table
        ds = tf.data.Dataset.from_tensor_slices((values, labels))
        if encoded:
            ds = ds.map(lambda p, y: (tf.io.read_file(p), y), num_parallel_calls=AUTOTUNE)
        return ds, encoded
    import tensorflow_datasets as tfds  # Heavy (seconds): only TFDS names need it.

    builder = _tfds_builder(name, data_dir)
    image_key, label_key = builder.info.supervised_keys
    tfds_split = _tfds_splits(set(builder.info.splits))[split]
    if tfds_split is None:
        raise ConfigError(
            f"TFDS dataset {name!r} has no {split!r} split. "
            f"Received: dataset={name!r}, split={split!r}"
        )
    ds = builder.as_dataset(
        split=tfds_split,
        decoders={image_key: tfds.decode.SkipDecoding()},
        shuffle_files=shuffle,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )
    return ds.map(lambda ex: (ex[image_key], tf.cast(ex[label_key], tf.int32))), True


def indexed_source(name, split):
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
            raise ConfigError(
                f"Image folder has no {split!r} split ({sources[split]}). "
                f"Received: dataset={name!r}, split={split!r}"
            )
        _check_images_decode(paths)
        return np.array(paths), labels, True
    return None
