"""Image files to model input: decode to RGB, then one of two resizes.

Our models take float RGB 0..255 (the rescaling is in the graph), so only the
decode and the resize can differ between a desktop and a phone:

- "mediapipe": what MediaPipe Tasks' ImageClassifier does to the image before
  the model (`ImageToTensorCalculator`, OpenCV converter, as configured by
  `image_preprocessing_graph.cc`): the whole image is *stretched* to the
  model's size (no crop, no aspect ratio kept) by `cv::warpPerspective` with
  `INTER_LINEAR`; the corners of the image map to the corners of the output,
  so output pixel x samples source x * w / W (no half-pixel offset), in
  1/32-pixel steps, with 15-bit fixed-point weights, no antialiasing, border
  pixels replicated, and the result is rounded to uint8 before the
  NormalizationOptions (mean 0, std 1 for our models) turn it into floats.
- "training": the data pipeline's eval resize (`keras_effnet.data`):
  `tf.image.resize(..., antialias=True)`, bilinear with half-pixel centers and
  an antialiasing filter when shrinking, kept in float (no rounding). Export
  verification (`export.verification`) runs on this.

docs/android.md "Predict on a desktop" gives the measured difference between the two.
"""

import os

import numpy as np

RESIZES = ("mediapipe", "training")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# OpenCV's remap tables: coordinates in 1/32 pixel (INTER_BITS = 5), weights
# scaled by 2**15 (INTER_REMAP_COEF_BITS), rounded back with +2**14 >> 15.
_TAB = 32
_COEF_BITS = 15


def image_files(images) -> list[str]:
    """The image files of a path, a folder (its JPEG/PNG files, recursively, sorted) or a list.

    Raises:
        ValueError: a path that does not exist, or no image found.
    """
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    files = []
    for item in images:
        path = os.fspath(item)
        if os.path.isdir(path):  # Class sub-folders too: a dataset folder works as is.
            files += sorted(
                os.path.join(d, n)
                for d, _, names in os.walk(path)
                for n in names
                if n.lower().endswith(IMAGE_SUFFIXES)
            )
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise ValueError(f"images: no such file or folder. Received: images={path!r}")
    if not files:
        raise ValueError(f"images: no JPEG or PNG file found. Received: images={images!r}")
    return files


def decode(path) -> np.ndarray:
    """uint8 RGB (H, W, 3) of a JPEG/PNG file: grayscale replicated, alpha dropped.

    The training pipeline's decoder (`tf.io.decode_image(channels=3)`), so a
    file reads the same here as it did in training and verification.
    """
    import tensorflow as tf

    with open(path, "rb") as f:
        data = f.read()
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as e:
        raise ValueError(f"images: {path!r} is not a readable JPEG/PNG ({e})") from None
    return image.numpy()


def mediapipe_resize(image, size) -> np.ndarray:
    """MediaPipe ImageClassifier's stretch to `size` (height, width): uint8 (module doc).

    Args:
        image: uint8 RGB (H, W, 3).
        size: (height, width) of the model input.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image: expected uint8 pixels, got {image.dtype}")
    (out_h, out_w), (h, w) = size, image.shape[:2]
    y0, y1, wy = _taps(h, out_h)
    x0, x1, wx = _taps(w, out_w)
    img = image.astype(np.int64)
    top = img[y0][:, x0] * (_TAB - wx)[None, :, None] + img[y0][:, x1] * wx[None, :, None]
    bottom = img[y1][:, x0] * (_TAB - wx)[None, :, None] + img[y1][:, x1] * wx[None, :, None]
    total = (top * (_TAB - wy)[:, None, None] + bottom * wy[:, None, None]) * _TAB
    out = (total + (1 << (_COEF_BITS - 1))) >> _COEF_BITS
    return np.clip(out, 0, 255).astype(np.uint8)


def _taps(src, dst):
    """Source indices (BORDER_REPLICATE) and 1/32 weights of each output pixel on one axis."""
    fixed = np.rint(np.arange(dst, dtype=np.float64) * (src / dst) * _TAB).astype(np.int64)
    index, frac = fixed >> 5, fixed & (_TAB - 1)
    return np.clip(index, 0, src - 1), np.clip(index + 1, 0, src - 1), frac


def training_resize(image, size) -> np.ndarray:
    """The data pipeline's eval resize (bilinear, half-pixel, antialias): float32 0..255."""
    import tensorflow as tf

    out = tf.image.resize(tf.convert_to_tensor(image, tf.float32), size, antialias=True)
    return tf.clip_by_value(out, 0.0, 255.0).numpy()


def load_images(paths, size, resize="mediapipe") -> np.ndarray:
    """float32 (N, H, W, 3) 0..255 model input of image files, resized by `resize`."""
    if resize not in RESIZES:
        raise ValueError(f"resize: expected one of {RESIZES}. Received: resize={resize!r}")
    fn = mediapipe_resize if resize == "mediapipe" else training_resize
    return np.stack([np.asarray(fn(decode(p), size), np.float32) for p in paths])
