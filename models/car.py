"""Compression-artifact reduction networks for the two-stage baselines of Table I (CAR, then SR).

Both work on one channel (the Y of YCbCr) at the LR size; ``benchmark.restore`` applies them to Y and keeps
the chroma.
"""
from __future__ import annotations

import torch
from torch import nn

from models.weights import load_weights


class DnCNN(nn.Module):
    """DnCNN (Zhang et al., TIP 2017) in KAIR's batch-norm-folded layout (``dncnn3.pth``: keys model.0 ... model.38).

    20 3x3 convs of 64 channels with ReLU between them; the network predicts the residual, output = x - model(x).
    """

    def __init__(self, in_channels: int = 1, num_feat: int = 64, num_layers: int = 20):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, num_feat, 3, 1, 1), nn.ReLU(inplace=True)]
        for _ in range(num_layers - 2):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(num_feat, in_channels, 3, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.model(x)


class ARCNN(nn.Module):
    """AR-CNN (Dong et al., ICCV 2015): feature extraction 9x9x64, enhancement 7x7x32, mapping 1x1x16,
    reconstruction 5x5, ReLU between layers, on Y."""

    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.base = nn.Sequential(
            nn.Conv2d(in_channels, 64, 9, padding=4), nn.ReLU(inplace=True),
            nn.Conv2d(64, 32, 7, padding=3), nn.ReLU(inplace=True),
            nn.Conv2d(32, 16, 1), nn.ReLU(inplace=True),
        )
        self.last = nn.Conv2d(16, in_channels, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.base(x))


def dncnn3() -> DnCNN:
    """KAIR's blind DnCNN-3 (Gaussian denoising, SISR and JPEG deblocking in one grey model): 665,921 parameters."""
    return DnCNN(1, 64, 20)


def arcnn() -> ARCNN:
    return ARCNN(1)


def load_dncnn3(path) -> DnCNN:
    """KAIR ``dncnn3.pth``, strictly."""
    return load_weights(dncnn3(), path)


def load_arcnn(path) -> ARCNN:
    """An AR-CNN checkpoint in this module's key layout, strictly."""
    return load_weights(arcnn(), path)
