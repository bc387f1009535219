"""benchmark/metrics/image_quality.py: known PSNR/SSIM values and the paper's Table I bicubic rows."""
import numpy as np
import pytest

from benchmark.degrade import degrade, imresize, modcrop
from benchmark.images import list_images, read_image
from benchmark.metrics.image_quality import psnr, rgb_to_y, ssim


def test_luma_of_primaries():
    img = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 0], [255, 255, 255]]], np.uint8)
    assert np.allclose(rgb_to_y(img)[0], [16 + 65.481, 16 + 128.553, 16 + 24.966, 16, 235])


def test_psnr_of_known_pair():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)  # Y differs by 10 * (65.481 + 128.553 + 24.966) / 255 = 8.588 everywhere
    dy = 10 * 219.0 / 255
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / dy**2), abs=1e-9)
    assert psnr(a, a) == float("inf")


def test_psnr_border_crop_ignores_the_border():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[0, :] = 255
    assert psnr(a, b, crop_border=1) == float("inf")
    assert psnr(a, b) < 30


def test_ssim_identity_and_shape_check():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, 255 - a) < 0.5
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(a, a[:16])


# The paper's Table I bicubic rows (DESIGN 5): (PSNR, SSIM) at QF 10, 20, 40.
PAPER = {"Set5": [(23.989, 0.6329), (25.316, 0.6761), (26.379, 0.7154)],
         "Set14": [(22.937, None), (23.848, None), (24.552, None)]}


@pytest.mark.parametrize("dataset", sorted(PAPER))
def test_paper_bicubic_rows(shared_data, dataset):
    hrs = [modcrop(read_image(p), 4) for p in list_images(shared_data / "sr" / dataset)]
    for qf, (want_psnr, want_ssim) in zip((10, 20, 40), PAPER[dataset]):
        srs = [imresize(degrade(hr, 4, qf), 4) for hr in hrs]
        assert np.mean([psnr(s, h) for s, h in zip(srs, hrs)]) == pytest.approx(want_psnr, abs=0.0005)
        if want_ssim is not None:
            assert np.mean([ssim(s, h) for s, h in zip(srs, hrs)]) == pytest.approx(want_ssim, abs=0.00005)


@pytest.mark.parametrize("dataset, want", [("Set5", (28.42, 0.8101)), ("Set14", (25.99, 0.7023)),
                                           ("BSD100", (25.96, 0.6672))])
def test_sr_literature_no_jpeg(shared_data, dataset, want):
    """No JPEG, crop 4, grey on grey, uint8 Y: the published bicubic numbers (shared/data/README.md)."""
    hrs = [modcrop(read_image(p, keep_grey=True), 4) for p in list_images(shared_data / "sr" / dataset)]
    srs = [imresize(imresize(hr, 1 / 4), 4) for hr in hrs]
    assert np.mean([psnr(s, h, 4, round_y=True) for s, h in zip(srs, hrs)]) == pytest.approx(want[0], abs=0.005)
    assert np.mean([ssim(s, h, 4, round_y=True) for s, h in zip(srs, hrs)]) == pytest.approx(want[1], abs=0.00005)
