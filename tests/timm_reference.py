"""timm's own modules as the reference (run by tests/helpers.py `timm_references`).

Usage: python timm_reference.py OUT_DIR SIZE ARCHITECTURE... [--load FILE]

For each architecture: timm.create_model(pretrained=False), random BatchNorm
affine parameters, and BatchNorm statistics of its real activations (one
training-mode pass over 16 random images, the test's two among them,
normalized as the checkpoint's pretrained_cfg says). Random weights alone make a
deep network's activations grow by orders of magnitude (V2-S reaches 1e5),
where float32 rounding, not the mapping under test, decides the outputs.
Writes OUT_DIR/<architecture>.safetensors with timm's state dict (metadata:
architecture and its pretrained_cfg mean/std) and OUT_DIR/<architecture>.npz
with images (NHWC, [0, 255]), logits and pooled features in float32, and
again in float64 (the same float32 weights and normalized inputs, `inputs`,
computed in double precision). With --load FILE,
the one architecture loads FILE with strict=True instead of being randomized.
This process never imports TensorFlow.
"""

import json
import os
import sys

import numpy as np
import timm
import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file


def _normalize(images, mean, std):
    x = (images / 255.0 - np.asarray(mean, "float32")) / np.asarray(std, "float32")
    return torch.from_numpy(x.astype("float32")).permute(0, 3, 1, 2)


def _randomize(model, size, seed, mean, std, images):
    generator = torch.Generator().manual_seed(seed)
    extra = np.random.default_rng(seed).uniform(0, 255, (14, size, size, 3)).astype("float32")
    pixels = [np.concatenate([images, extra])]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in norms:
            bn.weight.copy_(torch.rand(bn.num_features, generator=generator) + 0.5)
            bn.bias.copy_(torch.randn(bn.num_features, generator=generator) * 0.1)
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        for batch in pixels:  # the test's images among them, so the statistics fit them
            model(_normalize(batch, mean, std))


def main(argv):
    load = None
    if "--load" in argv:
        index = argv.index("--load")
        load, argv = argv[index + 1], argv[:index]
    out_dir, size, architectures = argv[0], int(argv[1]), argv[2:]
    torch.manual_seed(0)
    images = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype("float32")
    for architecture in architectures:
        model = timm.create_model(architecture, pretrained=False)
        cfg = model.pretrained_cfg
        mean, std = list(cfg["mean"]), list(cfg["std"])
        if load:
            model.load_state_dict(load_file(load), strict=True)
        else:
            _randomize(model, size, 0, mean, std, images)
            state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
            metadata = {
                "architecture": architecture,
                "mean": json.dumps(mean),
                "std": json.dumps(std),
            }
            save_file(
                state, os.path.join(out_dir, f"{architecture}.safetensors"), metadata=metadata
            )
        model.eval()
        with torch.no_grad():
            tensor = _normalize(images, mean, std)
            features = model.forward_features(tensor)
            pooled = model.forward_head(features, pre_logits=True)
            logits = model.forward_head(features)
            model.double()
            features64 = model.forward_features(tensor.double())
            pooled64 = model.forward_head(features64, pre_logits=True)
            logits64 = model.forward_head(features64)
        np.savez(
            os.path.join(out_dir, f"{architecture}.npz"),
            images=images,
            inputs=tensor.permute(0, 2, 3, 1).numpy(),
            logits=logits.numpy(),
            features=pooled.numpy(),
            logits64=logits64.numpy(),
            features64=pooled64.numpy(),
        )


if __name__ == "__main__":
    main(sys.argv[1:])
