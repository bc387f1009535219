"""TPS spatial transformer of RARE (Shi et al. 2016), as in clovaai `modules/transformation.py`.

The localisation net predicts F fiducial points C' in the input; the grid generator solves the thin-plate spline
that maps the fixed base points C of the rectified image onto C' and samples the input there. Module and buffer
names match the released clovaai checkpoints (`LocalizationNetwork.*`, `GridGenerator.inv_delta_C`, `P_hat`).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-6  # the r^2 log(r + eps) of `_build_P_hat`


def base_fiducials(num_fiducial: int) -> np.ndarray:
    """C: F/2 points evenly spaced on the top edge (y = -1) then F/2 on the bottom edge (y = 1), in [-1, 1]."""
    x = np.linspace(-1.0, 1.0, num_fiducial // 2)
    top = np.stack([x, -np.ones_like(x)], axis=1)
    bottom = np.stack([x, np.ones_like(x)], axis=1)
    return np.concatenate([top, bottom], axis=0)


def inv_delta_c(C: np.ndarray) -> np.ndarray:
    """Inverse of the (F+3)x(F+3) TPS system [[1, C, K]; [0, C^T]; [0, 1^T]], K = r^2 log r (diagonal r := 1)."""
    n = C.shape[0]
    r = np.linalg.norm(C[:, None, :] - C[None, :, :], axis=2)
    np.fill_diagonal(r, 1.0)
    K = r**2 * np.log(r)
    delta = np.concatenate(
        [
            np.concatenate([np.ones((n, 1)), C, K], axis=1),
            np.concatenate([np.zeros((2, 3)), C.T], axis=1),
            np.concatenate([np.zeros((1, 3)), np.ones((1, n))], axis=1),
        ],
        axis=0,
    )
    return np.linalg.inv(delta)


def pixel_grid(height: int, width: int) -> np.ndarray:
    """P: normalised pixel centres of the rectified image, row-major (x fastest), shape (H*W, 2) as (x, y)."""
    gx = (np.arange(-width, width, 2) + 1.0) / width
    gy = (np.arange(-height, height, 2) + 1.0) / height
    return np.stack(np.meshgrid(gx, gy), axis=2).reshape(-1, 2)


def p_hat(C: np.ndarray, P: np.ndarray) -> np.ndarray:
    """[1, P, r^2 log(r + 1e-6)] for every pixel centre P against every base point C, shape (H*W, F+3)."""
    r = np.linalg.norm(P[:, None, :] - C[None, :, :], axis=2)
    rbf = r**2 * np.log(r + _EPS)
    return np.concatenate([np.ones((P.shape[0], 1)), P, rbf], axis=1)


class LocalizationNetwork(nn.Module):
    """Predicts C' (B x F x 2) from the input image; fc2 starts at the RARE Fig. 6(a) layout (zero weights)."""

    def __init__(self, num_fiducial: int, in_channels: int):
        super().__init__()
        self.num_fiducial = num_fiducial
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 3, 1, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 256, 3, 1, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(256, 512, 3, 1, 1, bias=False), nn.BatchNorm2d(512), nn.ReLU(True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.localization_fc1 = nn.Sequential(nn.Linear(512, 256), nn.ReLU(True))
        self.localization_fc2 = nn.Linear(256, num_fiducial * 2)
        half = num_fiducial // 2
        x = np.linspace(-1.0, 1.0, half)
        top = np.stack([x, np.linspace(0.0, -1.0, half)], axis=1)
        bottom = np.stack([x, np.linspace(1.0, 0.0, half)], axis=1)
        with torch.no_grad():
            self.localization_fc2.weight.zero_()
            self.localization_fc2.bias.copy_(torch.from_numpy(np.concatenate([top, bottom])).float().view(-1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.conv(image).flatten(1)
        return self.localization_fc2(self.localization_fc1(features)).view(-1, self.num_fiducial, 2)


class GridGenerator(nn.Module):
    """Maps predicted fiducials C' to the sampling grid P' = P_hat @ inv_delta_C @ [C'; 0].

    Both buffers are computed in float64 and stored in float32, as the released checkpoints hold them.
    """

    def __init__(self, num_fiducial: int, output_size: tuple[int, int]):
        super().__init__()
        C = base_fiducials(num_fiducial)
        P = pixel_grid(*output_size)
        self.register_buffer("inv_delta_C", torch.tensor(inv_delta_c(C)).float())
        self.register_buffer("P_hat", torch.tensor(p_hat(C, P)).float())

    def build_P_prime(self, C_prime: torch.Tensor) -> torch.Tensor:
        """B x F x 2 fiducials -> B x (H*W) x 2 sampling coordinates in [-1, 1]."""
        C_prime_with_zeros = torch.cat([C_prime, C_prime.new_zeros(C_prime.size(0), 3, 2)], dim=1)
        T = torch.matmul(self.inv_delta_C, C_prime_with_zeros)
        return torch.matmul(self.P_hat, T)


class TPSSpatialTransformer(nn.Module):
    """Rectifies B x C x H x W input to B x C x h x w (clovaai `TPS_SpatialTransformerNetwork`)."""

    def __init__(self, num_fiducial: int, output_size: tuple[int, int], in_channels: int = 1):
        super().__init__()
        self.output_size = output_size
        self.LocalizationNetwork = LocalizationNetwork(num_fiducial, in_channels)
        self.GridGenerator = GridGenerator(num_fiducial, output_size)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # float32 even under autocast: in bf16 the grid solve moves the sampling points enough to raise the
        # trained TRBA's loss two- to eightfold, while this stage costs little of the network's time
        with torch.autocast(image.device.type, enabled=False):
            image = image.float()
            P_prime = self.GridGenerator.build_P_prime(self.LocalizationNetwork(image))
            grid = P_prime.reshape(P_prime.size(0), *self.output_size, 2)
            return F.grid_sample(image, grid, padding_mode="border", align_corners=True)
