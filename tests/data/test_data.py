"""Input pipelines: digits, image folders, TFDS by name, augmentation, errors."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_effnet import data
from keras_effnet.data import sources
from keras_effnet.errors import ConfigError
from keras_effnet.export import datasets as export_datasets


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_digits_info_and_deterministic_disjoint_splits():
    info = data.dataset_info("digits")
    assert info.num_classes == 10 and info.class_names == tuple("0123456789")
    assert sum(info.splits.values()) == 1797
    assert info.splits["train"] > 4 * info.splits["test"] > 0
    _, labels = sources._digits()
    parts = [
        set(sources._stratified_split(labels, sources._DIGITS_FRACTIONS, s)) for s in data.SPLITS
    ]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(set.union(*parts)) == 1797
    # Every class appears in every split.
    for part in parts:
        assert set(labels[list(part)]) == set(range(10))
    first = np.concatenate([y for _, y in _batches(data.load_dataset("digits", "test", 32, 64))])
    again = np.concatenate([y for _, y in _batches(data.load_dataset("digits", "test", 32, 64))])
    np.testing.assert_array_equal(first, again)


def test_digits_batches_match_the_input_contract():
    ds = data.load_dataset("digits", "validation", 40, 32)
    batches = _batches(ds)
    x, y = batches[0]
    assert x.shape == (32, 40, 40, 3) and x.dtype == np.float32
    assert y.dtype == np.int32 and y.shape == (32,)
    assert x.min() >= 0 and x.max() > 200  # 0..16 gray scaled to 0..255.
    np.testing.assert_allclose(x[..., 0], x[..., 2])  # Gray copied to RGB.
    assert sum(len(b[1]) for b in batches) == data.dataset_info("digits").splits["validation"]
    dropped = _batches(data.load_dataset("digits", "validation", 40, 32, drop_remainder=True))
    assert all(len(b[1]) == 32 for b in dropped)


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    def labels(seed):
        ds = data.load_dataset(
            "digits", "train", 32, 1258 // 2, shuffle=True, seed=seed, repeat=True
        )
        it = iter(ds)
        return next(it)[1].numpy(), next(it)[1].numpy(), next(it)[1].numpy()

    a, b = labels(3), labels(3)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], a[2])  # Second epoch starts in another order.
    assert not np.array_equal(a[0], labels(4)[0])


def test_shuffled_draw_ignores_global_seed():
    # The int8 calibration images (a shuffled, non-repeating draw) are the
    # same whatever seed the process set before (keras.utils.set_random_seed).
    def first(global_seed):
        keras.utils.set_random_seed(global_seed)
        ds = data.load_dataset("digits", "train", 16, 200, shuffle=True, reshuffle=False, seed=1)
        return [y.numpy() for _, y in ds]

    a, b = first(0), first(5)
    assert sum(len(y) for y in a) == data.dataset_info("digits").splits["train"]
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    unshuffled = np.concatenate(
        [y.numpy() for _, y in data.load_dataset("digits", "train", 16, 200)]
    )
    assert not np.array_equal(np.concatenate(a), unshuffled)
    np.testing.assert_array_equal(np.sort(np.concatenate(a)), np.sort(unshuffled))
    # The arrays the export calibrates on: the same draw.
    drawn = export_datasets.load_arrays("digits", "train", (16, 16), limit=50, shuffle=True, seed=1)
    np.testing.assert_array_equal(drawn[1], np.concatenate(a)[:50])


def test_one_pass_dataset_reshuffles_on_every_iteration():
    # What `fit` iterates once per epoch without repeat.
    ds = data.load_dataset("digits", "train", 16, 2000, shuffle=True, seed=1)
    first, second = (next(iter(ds))[1].numpy() for _ in range(2))
    assert not np.array_equal(first, second)


def test_augmentations_keep_range_and_mixup_makes_soft_labels():
    ds = data.load_dataset(
        "digits",
        "train",
        32,
        16,
        shuffle=True,
        augment="crop,flip,randaugment,mixup",
        one_hot=True,
        drop_remainder=True,
    )
    x, y = next(iter(ds))
    x, y = x.numpy(), y.numpy()
    assert x.shape == (16, 32, 32, 3) and 0 <= x.min() and x.max() <= 255.0
    assert y.shape == (16, 10) and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert ((y > 0.01) & (y < 0.99)).any()  # Some labels mixed.
    plain = next(iter(data.load_dataset("digits", "train", 32, 16, one_hot=True)))[1].numpy()
    assert set(np.unique(plain)) == {0.0, 1.0}


def test_shift_translates_and_scales_without_flipping():
    # A bright 2 px column at x = 8..9 of a 32 px frame: a flip would move it
    # to x = 22..23; shift moves it by at most 1/8 of the side (4 px) plus the
    # 0.85-1.15 scale (about 1 px at this distance from the centre).
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, :, 8:10, :] = 255
    fn = data._preprocess(32, False, ("shift",), 0.5, None)
    columns, heights = set(), set()
    for position in range(40):
        seeds = data.stream.example_seeds(0, position)
        x = fn(tf.constant(image[0, ..., :1]), 0, seeds)[0].numpy()
        bright = np.flatnonzero(x[..., 0].max(axis=0) > 100)
        assert len(bright) and x.shape == (32, 32, 3)
        columns.update(bright.tolist())
        heights.add(int((x[..., 0].max(axis=1) > 100).sum()))
    assert min(columns) >= 2 and max(columns) <= 16  # Never flipped to the right half.
    assert len(columns) > 4 and len(heights) > 2  # Moved and rescaled.
    # The same (seed, position) gives the same image.
    a = fn(tf.constant(image[0, ..., :1]), 0, data.stream.example_seeds(3, 7))[0]
    b = fn(tf.constant(image[0, ..., :1]), 0, data.stream.example_seeds(3, 7))[0]
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(augment="crop,zoom"), "augment"),
        (dict(augment="mixup"), "one_hot"),
        (dict(split="dev"), "split"),
        (dict(image_size=0), "image_size"),
    ],
)
def test_bad_arguments_raise_one_clear_error(kwargs, match):
    args = dict(name="digits", split="train", image_size=32, batch_size=8) | kwargs
    with pytest.raises(ConfigError, match=match):
        data.load_dataset(**args)


def test_unknown_dataset_names_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="Unknown dataset.*no_such_dataset_xyz"):
        data.dataset_info("no_such_dataset_xyz")
    with pytest.raises(ConfigError, match="directory not found"):
        data.dataset_info(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="no class subdirectories"):
        data.dataset_info(str(tmp_path))


def _write_image(path, color, size=(20, 26), fmt="png"):
    image = np.zeros(size + (3,), np.uint8)
    image[..., color] = 220
    encoded = tf.io.encode_png(image) if fmt == "png" else tf.io.encode_jpeg(image, quality=95)
    path.write_bytes(encoded.numpy())


def _make_folder(root, per_class=10):
    for c, name in enumerate(["blue", "green", "red"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            fmt = "png" if i % 2 else "jpg"
            _write_image(root / name / f"{i}.{fmt}", 2 - c, fmt=fmt)
    (root / "red" / ".DS_Store").write_bytes(b"\0junk")  # Hidden files are ignored.


def test_image_folder_dataset(tmp_path):
    _make_folder(tmp_path)
    info = data.dataset_info(str(tmp_path))
    assert info.kind == "folder" and info.class_names == ("blue", "green", "red")
    assert info.splits == {"train": 24, "validation": 3, "test": 3}
    assert info.image_side == 20  # The shorter side of the 20x26 images.
    assert data.dataset_info("digits").image_side == 8
    x, y = _batches(data.load_dataset(str(tmp_path), "train", 32, 24))[0]
    assert x.shape == (24, 32, 32, 3) and sorted(np.bincount(y)) == [8, 8, 8]
    # Class c is colored in channel 2 - c: blue=2, green=1, red=0.
    np.testing.assert_array_equal(np.argmax(x[:, 16, 16, :], axis=-1), 2 - y)


def test_image_folder_with_split_subdirectories(tmp_path):
    _make_folder(tmp_path / "train", per_class=4)
    _make_folder(tmp_path / "test", per_class=2)
    info = data.dataset_info(str(tmp_path))
    # No validation folder: validation is held out from train (stratified,
    # one image per class here), never taken from test.
    assert info.splits == {"train": 9, "validation": 3, "test": 6}
    assert "held out" in info.sources["train"] and info.sources["test"] == "test/ folder"
    val = set(sources._folder_index(str(tmp_path))[1]["validation"][0])
    train = set(sources._folder_index(str(tmp_path))[1]["train"][0])
    assert not val & train and all("/train/" in p for p in val)
    assert sorted(sources._folder_index(str(tmp_path))[1]["validation"][1]) == [0, 1, 2]


def test_folder_without_test_split_has_none(tmp_path):
    _make_folder(tmp_path / "train", per_class=10)
    _make_folder(tmp_path / "validation", per_class=2)
    info = data.dataset_info(str(tmp_path))
    assert info.splits == {"train": 30, "validation": 6, "test": 0}
    assert info.sources["test"].startswith("none")
    with pytest.raises(ConfigError, match="has no 'test' split"):
        data.load_dataset(str(tmp_path), "test", 32, 8)


def test_resumed_training_stream_equals_the_uninterrupted_one():
    kwargs = dict(
        shuffle=True,
        augment="crop,flip,mixup",
        drop_remainder=True,
        repeat=True,
        seed=3,
        one_hot=True,
        num_classes=10,
    )
    full = iter(data.load_dataset("digits", "train", 32, 16, **kwargs))
    batches = [next(full) for _ in range(90)]  # > 1 pass (1258 examples): a reshuffle included.
    resumed = iter(data.load_dataset("digits", "train", 32, 16, skip_examples=85 * 16, **kwargs))
    for expected in batches[85:]:
        got = next(resumed)
        np.testing.assert_array_equal(expected[0].numpy(), got[0].numpy())
        np.testing.assert_array_equal(expected[1].numpy(), got[1].numpy())
    # Each pass visits every training example once, in a new order.
    labels = np.concatenate([b[1].numpy() for b in batches]).argmax(-1)
    first = labels[:1248]
    assert not np.array_equal(first[:100], labels[1258:1358])
    assert np.bincount(first, minlength=10).min() > 90


def test_corrupt_file_in_folder_is_an_error_naming_it(tmp_path):
    _make_folder(tmp_path)
    (tmp_path / "green" / "notes.jpg").write_text("this is not an image")
    good = tf.io.encode_jpeg(np.zeros((16, 16, 3), np.uint8)).numpy()
    (tmp_path / "red" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    # Each split is decoded in full before use; every bad file is named.
    names = set()
    for split in data.SPLITS:
        try:
            data.load_dataset(str(tmp_path), split, 32, 8)
        except ConfigError as err:
            names |= {n for n in ("notes.jpg", "truncated.jpg") if n in str(err)}
    assert names == {"notes.jpg", "truncated.jpg"}


def test_empty_class_folder_is_an_error(tmp_path):
    _make_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no files"):
        data.dataset_info(str(tmp_path))


class KerasEffnetTestColors(tfds.core.GeneratorBasedBuilder):
    """A tiny TFDS dataset generated offline: only a "train" split."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(names=["red", "green", "blue"]),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(40):
            image = np.zeros((18 + i % 4, 24, 3), np.uint8)
            image[..., i % 3] = 200
            yield i, {"image": image, "label": i % 3}


def test_tfds_dataset_by_name_with_carved_splits(tmp_path):
    info = data.dataset_info("keras_effnet_test_colors", data_dir=str(tmp_path))
    assert info.kind == "tfds" and info.class_names == ("red", "green", "blue")
    assert info.splits == {"train": 32, "validation": 4, "test": 4}
    x, y = _batches(
        data.load_dataset("keras_effnet_test_colors", "train", 32, 32, data_dir=str(tmp_path))
    )[0]
    assert x.shape == (32, 32, 32, 3) and y.dtype == np.int32
    np.testing.assert_array_equal(np.argmax(x[:, 10, 10, :], axis=-1), y)
    assert os.path.isdir(tmp_path / "keras_effnet_test_colors")


def test_config_error_is_one_class_wherever_it_is_imported():
    from keras_effnet import errors
    from keras_effnet.training import config as config_lib

    assert config_lib.ConfigError is errors.ConfigError is ConfigError
    assert config_lib.parse_augment is data.parse_augment
    assert (
        data.parse_augment("mixup, crop") == ("crop", "mixup") and data.parse_augment("none") == ()
    )
    with pytest.raises(ConfigError, match="`augment` must be.*Received: augment='zoom'"):
        data.parse_augment("zoom")
