"""Turns the ways a caller can name data into numpy (images, labels) arrays.

Calibration, verification and the denylist search all need a few hundred
images in the model's input contract (float32 RGB 0..255, NHWC). A dataset
can be given as a name for `keras_effnet.data.load_dataset` (same
preprocessing as training, no augmentation), a `tf.data.Dataset` of
(images, labels) batches, an (images, labels) tuple of arrays, or a dict of
such tuples keyed by split.
"""

import os

import numpy as np

from keras_effnet import data


def load_arrays(dataset, split, image_size, *, limit=None, data_dir=None, shuffle=False, seed=0):
    """Returns (images float32 NHWC 0..255, labels int32) for one split.

    Args:
        dataset: A dataset name or path (see module doc), a `tf.data.Dataset`, an
            (images, labels) tuple, or a {split: (images, labels)} dict.
        split: "train", "validation" or "test".
        image_size: (height, width) the model takes.
        limit: Keep at most this many examples (None: all).
        data_dir: Passed to `load_dataset` for named datasets.
        shuffle: Shuffle a named dataset before taking `limit` examples.
        seed: Shuffle seed.

    Raises:
        ValueError: if `dataset` is of an unknown kind or holds no example.
    """
    if dataset is None:
        raise ValueError(f"dataset: got None, need data for split {split!r}")
    if isinstance(dataset, dict):
        if split not in dataset:
            raise ValueError(f"dataset: no split {split!r} in {sorted(dataset)}")
        dataset = dataset[split]
    if isinstance(dataset, (str, bytes)) or hasattr(dataset, "__fspath__"):
        height, width = image_size
        if height != width:
            raise ValueError(
                f"image_size: named datasets load square images, got "
                f"{tuple(image_size)}; pass arrays instead"
            )
        dataset = data.load_dataset(
            os.fspath(dataset),
            split,
            height,
            64,
            data_dir=data_dir,
            shuffle=shuffle,
            reshuffle=False,  # One order per seed, in any process (calibration draws).
            seed=seed,
            cache=False,
        )
    if isinstance(dataset, tuple) and len(dataset) == 2:
        images, labels = (np.asarray(a) for a in dataset)
    elif hasattr(dataset, "as_numpy_iterator") or hasattr(dataset, "__iter__"):
        images, labels, count = [], [], 0
        for batch_images, batch_labels in dataset:
            images.append(np.asarray(batch_images))
            labels.append(np.asarray(batch_labels))
            count += len(images[-1])
            if limit is not None and count >= limit:
                break
        if not images:
            raise ValueError(f"dataset: split {split!r} yielded no example")
        images, labels = np.concatenate(images), np.concatenate(labels)
    else:
        raise ValueError(
            "dataset: expected a name, tf.data.Dataset, (images, labels) tuple or "
            f"dict of splits, got {type(dataset).__name__}"
        )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if len(images) == 0:
        raise ValueError(f"dataset: split {split!r} holds no example")
    if images.ndim != 4 or tuple(images.shape[1:3]) != tuple(image_size):
        raise ValueError(
            f"dataset: split {split!r} images have shape {images.shape}, the "
            f"model takes (N, {image_size[0]}, {image_size[1]}, C)"
        )
    return images.astype(np.float32), labels.astype(np.int32).reshape(-1)


def class_names(dataset, data_dir=None):
    """Class names of a named dataset, or None when they are not known."""
    if not isinstance(dataset, str):
        return None
    try:
        return list(data.dataset_info(dataset, data_dir=data_dir).class_names)
    except (ImportError, AttributeError, ValueError):
        return None
