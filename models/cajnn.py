"""CAJNN: context-aware joint compression-artifact reduction and x4 super-resolution network (DESIGN 4).

conv3x3 -> ASPP (3x3 convs at dilations 1/3/4, concatenated, fused by 1x1) -> RRDB trunk with a long skip ->
two [conv 3x3 to 4C + PixelShuffle(2)] stages -> two 3x3 enhancement convs -> + bilinear x4 of the input.

The paper also draws a 3x3 conv after the trunk, but its parameter count (14.8 M) is only reproduced without
it and with the two-stage x2 PixelShuffle upsampler: that gives 14,847,491 parameters, whereas a trunk conv
adds 36,928 and a single conv to 3*16 channels + PixelShuffle(4) gives 14.54 M. We build the configuration
that matches the published count.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import InputError
from models.rrdb import RRDB
from models.weights import load_strict, read_state_dict, unwrap_state_dict


@dataclass(frozen=True)
class CAJNNConfig:
    """Width, growth and depth of a CAJNN; ``dilations`` of the ASPP branches."""

    num_feat: int = 64
    num_grow: int = 32
    num_block: int = 20
    dilations: tuple[int, ...] = (1, 3, 4)
    scale: int = 4

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CAJNNConfig":
        return cls(**{**d, "dilations": tuple(d.get("dilations", (1, 3, 4)))})


class ASPP(nn.Module):
    """Atrous spatial pyramid: parallel 3x3 convs at several dilations, concatenated and fused by a 1x1 conv."""

    def __init__(self, num_feat: int, dilations: tuple[int, ...]):
        super().__init__()
        self.branches = nn.ModuleList(nn.Conv2d(num_feat, num_feat, 3, 1, d, dilation=d) for d in dilations)
        self.fuse = nn.Conv2d(num_feat * len(dilations), num_feat, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.lrelu(branch(x)) for branch in self.branches], 1))


class CAJNN(nn.Module):
    """RGB in [0, 1] at LR size -> RGB at ``scale`` x the size (not clamped)."""

    def __init__(self, config: CAJNNConfig = CAJNNConfig()):
        super().__init__()
        if config.scale != 4:
            raise ValueError("CAJNN is defined for x4 (two PixelShuffle(2) stages)")
        self.config = config
        nf = config.num_feat
        self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
        self.aspp = ASPP(nf, config.dilations)
        self.body = nn.Sequential(*[RRDB(nf, config.num_grow) for _ in range(config.num_block)])
        self.conv_up1 = nn.Conv2d(nf, nf * 4, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(nf, nf * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.aspp(self.conv_first(x))
        feat = feat + self.body(feat)
        feat = self.lrelu(self.pixel_shuffle(self.conv_up1(feat)))
        feat = self.lrelu(self.pixel_shuffle(self.conv_up2(feat)))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        skip = F.interpolate(x, scale_factor=self.config.scale, mode="bilinear", align_corners=False)
        return out + skip


def cajnn_paper() -> CAJNN:
    """The paper's network: 64 features, growth 32, 20 RRDB; 14,847,491 parameters."""
    return CAJNN(CAJNNConfig())


def cajnn_lite() -> CAJNN:
    """Same architecture, 32 features, growth 16, 4 RRDB (835,843 parameters): trainable on a 2-core CPU."""
    return CAJNN(CONFIGS["lite"])


CONFIGS = {"paper": CAJNNConfig(), "lite": CAJNNConfig(num_feat=32, num_grow=16, num_block=4)}


def config_from_state_dict(state_dict: dict[str, torch.Tensor]) -> CAJNNConfig:
    """Width, growth and depth read off the tensor shapes (the ASPP dilations are not in the keys: paper's)."""
    try:
        return CAJNNConfig(
            num_feat=state_dict["conv_first.weight"].shape[0],
            num_grow=state_dict["body.0.rdb1.conv1.weight"].shape[0],
            num_block=1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("body.")),
            dilations=(1, 3, 4)[: sum(1 for k in state_dict if k.startswith("aspp.branches.") and k.endswith("weight"))],
        )
    except (KeyError, ValueError) as exc:
        raise KeyError(f"not a CAJNN state_dict (no {exc})") from None


def load_cajnn(path) -> CAJNN:
    """A CAJNN from a project safetensors file (config in its metadata) or a torch checkpoint, loaded strictly.

    Torch files may hold a bare state_dict or wrap it in ``params_ema``/``params``/``model``/``state_dict``.
    """
    checkpoint, metadata = read_state_dict(path)
    state_dict = unwrap_state_dict(checkpoint)
    try:
        config = (CAJNNConfig.from_dict(metadata["config"]) if "config" in metadata
                  else config_from_state_dict(state_dict))
    except KeyError as exc:
        raise InputError(f"{path}: {exc.args[0]}; {len(state_dict)} keys, e.g. {list(state_dict)[:3]}") from None
    except (TypeError, ValueError):
        raise InputError(f"{path}: not a CAJNN checkpoint: its header config {metadata['config']} is not a "
                         f"CAJNN configuration; {len(state_dict)} keys, e.g. {list(state_dict)[:3]}") from None
    return load_strict(CAJNN(config), state_dict, path).eval()


def warm_start_from_rrdbnet(model: CAJNN, rrdb_state_dict: dict[str, torch.Tensor]) -> CAJNN:
    """Initialise ``model`` from an RRDBNet of the same width and growth (e.g. Real-ESRGAN x4plus): its first conv
    and its first ``num_block`` RRDB blocks are copied; the ASPP starts as the identity (the dilation-1 and
    dilation-3 branches carry +x and -x through their centre taps, and ``lrelu(x) - lrelu(-x) = 1.2 x`` is fused
    back to x; their other taps start at zero, the dilation-4 branch keeps its fresh weights and enters the fusion
    with zero weight, so that it still receives gradients), so the copied trunk
    sees the features it was trained on; ``conv_last`` starts at zero, so the first output is the bilinear skip.
    The PixelShuffle upsampler and ``conv_hr`` keep their fresh initialisation.
    """
    nf = model.config.num_feat
    if rrdb_state_dict["conv_first.weight"].shape[0] != nf or \
            rrdb_state_dict["body.0.rdb1.conv1.weight"].shape[0] != model.config.num_grow:
        raise ValueError("the RRDBNet's width or growth differs from the CAJNN's")
    if len(model.config.dilations) < 2 or model.config.dilations[:2] != (1, 3):
        raise ValueError("the identity ASPP needs dilations starting 1, 3")
    own = model.state_dict()
    copied = {k: v for k, v in rrdb_state_dict.items()
              if k.startswith("conv_first.") or (k.startswith("body.") and int(k.split(".")[1]) < model.config.num_block)}
    with torch.no_grad():
        for key, value in copied.items():
            own[key].copy_(value)
        eye = torch.eye(nf)
        for branch, sign in zip(model.aspp.branches[:2], (1, -1)):
            branch.weight.zero_()
            branch.bias.zero_()
            branch.weight[:, :, 1, 1] = sign * eye
        model.aspp.fuse.weight.zero_()
        model.aspp.fuse.bias.zero_()
        model.aspp.fuse.weight[:, :nf, 0, 0] = eye / 1.2
        model.aspp.fuse.weight[:, nf:2 * nf, 0, 0] = -eye / 1.2
        model.conv_last.weight.zero_()
        model.conv_last.bias.zero_()
    return model
