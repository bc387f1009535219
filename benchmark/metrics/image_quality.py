"""PSNR and SSIM on the Y channel (DESIGN 5), with the border crop as an explicit argument (BasicSR style).

``round_y`` rounds Y to integers as MATLAB's ``rgb2ycbcr`` does on uint8 images: with it, ``crop_border=4`` and
grey images scored on their grey values, bicubic x4 gives the SR literature's published numbers (Set5 28.42 /
0.8101, Set14 25.99 / 0.7023); the paper's Table I uses float Y and no crop.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of a uint8 RGB image as float64 in [16, 235]; a 2-D (grey) image is returned as float."""
    if img.ndim == 2:
        return img.astype(np.float64)
    rgb = img.astype(np.float64) / 255.0
    return 16.0 + rgb @ np.array([65.481, 128.553, 24.966])


def _prepare(img: np.ndarray, ref: np.ndarray, crop_border: int, round_y: bool) -> tuple[np.ndarray, np.ndarray]:
    if img.shape != ref.shape:
        raise ValueError(f"image shapes differ: {img.shape} vs {ref.shape}")
    y, y_ref = rgb_to_y(img), rgb_to_y(ref)
    if round_y:
        y, y_ref = np.floor(y + 0.5), np.floor(y_ref + 0.5)
    if crop_border:
        y = y[crop_border:-crop_border, crop_border:-crop_border]
        y_ref = y_ref[crop_border:-crop_border, crop_border:-crop_border]
    return y, y_ref


def psnr(img: np.ndarray, ref: np.ndarray, crop_border: int = 0, round_y: bool = False) -> float:
    """PSNR in dB on Y (peak 255) after cropping ``crop_border`` pixels from each side; inf for identical images."""
    y, y_ref = _prepare(img, ref, crop_border, round_y)
    mse = np.mean((y - y_ref) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(img: np.ndarray, ref: np.ndarray, crop_border: int = 0, round_y: bool = False) -> float:
    """SSIM on Y: Gaussian 11x11 window, sigma 1.5, population covariance, data range 255 (Wang et al. 2004)."""
    y, y_ref = _prepare(img, ref, crop_border, round_y)
    return float(
        structural_similarity(y, y_ref, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    )
