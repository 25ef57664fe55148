"""timm's checkpoint format: `model.safetensors` state dicts, read and written with numpy.

timm names every tensor by module (``conv_stem.weight``, ``bn1.running_mean``,
``blocks.<stage>.<block>.conv_dw.weight``, ``conv_head.weight``,
``classifier.bias``) and stores PyTorch layouts: convolutions (O, I, kh, kw),
depthwise (C, 1, kh, kw), linear (out, in). Our layers keep keras.applications'
names and Keras layouts (HWIO, (kh, kw, C, 1), (in, out)). The mapping below
is by name and role, with every shape checked before anything is assigned.

timm's block types map onto our blocks by their arguments:
  * ``DepthwiseSeparableConv`` (``ds``): MBConv with expand ratio 1;
  * ``InvertedResidual`` (``ir``): MBConv;
  * ``EdgeResidual`` (``er``): FusedMBConv;
  * ``ConvBnAct`` (``cn``): FusedMBConv with expand ratio 1.

Reading uses `safetensors.numpy`, so loading weights never imports PyTorch.
"""

import json
import os
import re

import keras
import numpy as np

from keras_effnet import io, keras_internals
from keras_effnet.core import pretrained, variants
from keras_effnet.core.layers import FusedMBConv, MBConv

# (timm module, our sublayer suffix, layout) per block type, in call order.
_SE = (("se.conv_reduce", "se_reduce", "conv"), ("se.conv_expand", "se_expand", "conv"))
_BLOCKS = {
    "ds": (("conv_dw", "{dw}", "depthwise"), ("bn1", "bn", "bn"), *_SE,
           ("conv_pw", "project_conv", "conv"), ("bn2", "project_bn", "bn")),
    "ir": (("conv_pw", "expand_conv", "conv"), ("bn1", "expand_bn", "bn"),
           ("conv_dw", "{dw}", "depthwise"), ("bn2", "bn", "bn"), *_SE,
           ("conv_pwl", "project_conv", "conv"), ("bn3", "project_bn", "bn")),
    "er": (("conv_exp", "expand_conv", "conv"), ("bn1", "expand_bn", "bn"), *_SE,
           ("conv_pwl", "project_conv", "conv"), ("bn2", "project_bn", "bn")),
    "cn": (("conv", "project_conv", "conv"), ("bn1", "project_bn", "bn")),
}  # fmt: skip
_STEM_HEAD = (
    ("conv_stem", "stem_conv", "conv"),
    ("bn1", "stem_bn", "bn"),
    ("conv_head", "top_conv", "conv"),
    ("bn2", "top_bn", "bn"),
)
_CLASSIFIER = ("classifier", "predictions", "dense")
_BN = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
       ("running_var", "moving_variance"))  # fmt: skip
_IGNORED = ("num_batches_tracked",)


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Reads a `.safetensors` file into ({name: numpy array}, header metadata).

    Raises:
        ValueError: one line naming the file, for a truncated, corrupt or
            non-safetensors file.
    """
    from safetensors import safe_open  # numpy framework: no PyTorch import

    try:
        tensors = {}
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            for name in f.keys():
                tensors[name] = f.get_tensor(name)
        return tensors, metadata
    except Exception as err:  # safetensors raises its own SafetensorError and others.
        message = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise ValueError(
            f"Not a readable safetensors file (truncated or corrupt?): {path!r} ({message})"
        ) from None


def _blocks_by_stage(model):
    """[(stage index from 0, [block layers in order])] of our MBConv/FusedMBConv blocks."""
    stages = {}
    for layer in model.layers:
        if isinstance(layer, (MBConv, FusedMBConv)):
            match = re.fullmatch(r"block(\d+)[a-z]+", layer.name)
            if match is None:
                raise ValueError(f"Unexpected block name {layer.name!r} in {model.name!r}")
            stages.setdefault(int(match.group(1)) - 1, []).append(layer)
    return sorted(stages.items())


def _block_type(block):
    if isinstance(block, FusedMBConv):
        return "cn" if block.expand_ratio == 1 else "er"
    return "ds" if block.expand_ratio == 1 else "ir"


def _pairs(model):
    """[(timm module prefix, our layer, layout)] for every weight-bearing layer."""
    layers = {layer.name: layer for layer in keras_internals.flatten_layers(model)}
    pairs = [(timm, layers.get(ours), kind) for timm, ours, kind in _STEM_HEAD]
    for stage, blocks in _blocks_by_stage(model):
        for index, block in enumerate(blocks):
            dw = getattr(block, "depthwise_name", "dwconv")
            for timm, suffix, kind in _BLOCKS[_block_type(block)]:
                layer = layers.get(f"{block.name}_{suffix.format(dw=dw)}")
                if layer is None and timm.startswith("se."):
                    continue  # no squeeze-excite in this block (Lite, fused V2 stages)
                pairs.append((f"blocks.{stage}.{index}.{timm}", layer, kind))
    if "predictions" in layers:
        pairs.append((_CLASSIFIER[0], layers["predictions"], _CLASSIFIER[2]))
    missing = [timm for timm, layer, _ in pairs if layer is None]
    if missing:
        raise ValueError(f"{model.name!r} has no layer for timm module {missing[0]!r}")
    return pairs


# Axis permutations PyTorch -> Keras and back, per layout (conv OIHW <-> HWIO,
# depthwise (C, 1, kh, kw) <-> (kh, kw, C, 1), linear (out, in) <-> (in, out)).
_PERMUTATIONS = {
    "conv": ((2, 3, 1, 0), (3, 2, 0, 1)),
    "depthwise": ((2, 3, 0, 1), (2, 3, 0, 1)),
    "dense": ((1, 0), (1, 0)),
}


def _permute(array, kind, to_keras=True):
    """`array` in the other framework's layout (biases and BatchNorm vectors unchanged)."""
    permutations = _PERMUTATIONS.get(kind)
    if permutations is None or array.ndim < 2:
        return array
    return array.transpose(permutations[0 if to_keras else 1])


def _variables(layer, kind):
    """[(timm parameter name, Keras variable)] of one layer."""
    if kind == "bn":
        return [(timm, getattr(layer, ours)) for timm, ours in _BN]
    if kind == "depthwise":
        return [("weight", layer.kernel)]
    names = [("weight", layer.kernel)]
    if getattr(layer, "use_bias", False):
        names.append(("bias", layer.bias))
    return names


def _tensor_map(model):
    """{timm tensor name: (Keras variable, layout)} for `model`."""
    return {
        f"{prefix}.{param}": (variable, kind)
        for prefix, layer, kind in _pairs(model)
        for param, variable in _variables(layer, kind)
    }


def load_timm_state(model, tensors, path) -> int:
    """Assigns a timm state dict (numpy arrays) to `model`, all or nothing.

    Every weight of the model must be in the file with the right shape, and
    every tensor of the file must have a place in the model (the classifier
    is dropped only when the model has none: `include_top=False`).

    Raises:
        ValueError: one line naming the file, the first tensor that does not
            fit, and both shapes (in the file's layout).
    """
    targets = _tensor_map(model)
    has_top = any(name.startswith(_CLASSIFIER[0] + ".") for name in targets)
    assignments = []
    for name, (variable, kind) in targets.items():
        if name not in tensors:
            raise ValueError(
                f"{path!r} does not fit {model.name!r}: it has no tensor {name!r} "
                f"(a checkpoint of another architecture?)"
            )
        value = _permute(np.asarray(tensors[name]), kind)
        if tuple(value.shape) != tuple(variable.shape):
            expected = _permute(np.empty(variable.shape, np.int8), kind, to_keras=False).shape
            raise ValueError(
                f"{path!r} does not fit {model.name!r}: tensor {name!r} has shape "
                f"{tuple(tensors[name].shape)}, the model needs {tuple(expected)} "
                f"(a checkpoint of another architecture or class count?)"
            )
        assignments.append((variable, value))
    extra = [
        n
        for n in tensors
        if n not in targets
        and not n.endswith(_IGNORED)
        and (has_top or not n.startswith(_CLASSIFIER[0] + "."))
    ]
    if extra:
        raise ValueError(
            f"{path!r} does not fit {model.name!r}: tensor {extra[0]!r} has no place in the "
            f"model ({len(extra)} such tensors; a checkpoint of a deeper architecture?)"
        )
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    return len(assignments)


def timm_state(model) -> dict[str, np.ndarray]:
    """`model`'s weights as a timm state dict of numpy arrays (PyTorch layouts)."""
    state = {}
    for name, (variable, kind) in _tensor_map(model).items():
        value = keras.ops.convert_to_numpy(variable)
        state[name] = np.ascontiguousarray(_permute(value, kind, to_keras=False))
        if kind == "bn" and name.endswith(".running_var"):
            state[name[: -len("running_var")] + "num_batches_tracked"] = np.zeros((), np.int64)
    return state


def model_normalization(model) -> pretrained.InputNormalization | None:
    """The `pretrained.InputNormalization` of `model`'s in-graph preprocessing, or None.

    Read from its "normalization" layer (B0-B7, Lite, V2-B: mean and
    variance of [0, 1] pixels) or, for V2-S/M/L, its "rescaling" layer
    (x * scale + offset = (x / 255 - mean) / std).
    """
    layers = {layer.name: layer for layer in model.layers}
    norm = layers.get("normalization")
    if norm is not None:
        mean = np.ravel(keras.ops.convert_to_numpy(norm.mean)).astype(float)
        std = np.sqrt(np.ravel(keras.ops.convert_to_numpy(norm.variance)).astype(float))
        mean, std = np.broadcast_to(mean, (3,)), np.broadcast_to(std, (3,))
        return pretrained.InputNormalization(tuple(mean.tolist()), tuple(std.tolist()))
    rescale = layers.get("rescaling")
    if rescale is not None:
        std = 1.0 / (255.0 * float(np.ravel(rescale.scale)[0]))
        mean = -float(np.ravel(rescale.offset)[0]) * std
        return pretrained.InputNormalization((mean,) * 3, (std,) * 3)
    return None


def _timm_architecture(model_name):
    """timm's architecture of a model named like keras.applications ("efficientnet_lite0")."""
    for variant in variants.VARIANTS.values():
        if variant.model_name == model_name:
            return pretrained.TIMM_ARCHITECTURES.get(variant.name, "")
    return ""


def save_timm_safetensors(
    model, path, *, architecture="", normalization=None, overwrite=False
) -> str | os.PathLike:
    """Writes `model`'s weights as a timm-format `.safetensors` file, atomically.

    Args:
        model: a keras-effnet model.
        path: the `.safetensors` file to write.
        architecture: timm's architecture name to record ("tf_efficientnet_lite0";
            by default the one of the variant `model.name` names, if any).
        normalization: the `pretrained.InputNormalization` the weights expect,
            recorded in the header so that loading applies it (by default
            the model's own in-graph preprocessing, `model_normalization`).
        overwrite: replace an existing file.
    """
    from safetensors.numpy import save

    if not os.fspath(path).endswith(".safetensors"):
        raise ValueError(f"The file name must end in .safetensors. Received: path={path!r}")
    metadata = {"format": "pt", "producer": "keras-effnet"}
    architecture = architecture or _timm_architecture(model.name)
    normalization = normalization or model_normalization(model)
    if architecture:
        metadata["architecture"] = architecture
    if normalization is not None:
        metadata["mean"] = json.dumps(list(normalization.mean))
        metadata["std"] = json.dumps(list(normalization.std))
    if os.path.lexists(path) and not overwrite:
        raise ValueError(f"{os.fspath(path)!r} exists; pass overwrite=True to replace it.")
    io.write_bytes_atomic(path, save(timm_state(model), metadata=metadata))
    return path
