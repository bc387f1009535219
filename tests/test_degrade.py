"""benchmark/degrade.py: MATLAB imresize to the pixel, JPEG, the paper's degradation."""
import numpy as np
import pytest

from benchmark.degrade import _cubic, degrade, imresize, jpeg, modcrop
from benchmark.images import read_image

SET5 = ["baby", "bird", "butterfly", "head", "woman"]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_reproduces_matlab_reference_pixel_for_pixel(shared_data, scale):
    for name in SET5:
        hr = modcrop(read_image(shared_data / "sr/Set5" / f"{name}.png"), scale)
        ref = read_image(shared_data / f"sr/reference/Set5_LR_bicubic_matlab/X{scale}/{name}x{scale}.png")
        lr = imresize(hr, 1 / scale)
        assert lr.shape == ref.shape
        assert np.array_equal(lr, ref), f"{name} x{scale}: {np.count_nonzero(lr != ref)} pixels differ"


def test_cubic_kernel_values():
    # a = -0.5: k(0)=1, k(1)=0, k(0.5)=0.5625, k(1.5)=-0.0625, k(2)=0
    assert np.allclose(_cubic(np.array([0, 0.5, 1, 1.5, 2, 2.5])), [1, 0.5625, 0, -0.0625, 0, 0])


def test_upscale_x2_of_tiny_array_by_hand():
    """1x2 image [0, 100] upscaled x2 (worked out by hand from MATLAB's ``contributions``).

    Output column 2 sits at u = 2/2 + 0.25 = 1.25; taps -1..4 mirror to pixels [2, 1, 1, 2, 2, 1]; pixel 2 (=100)
    gets k(1.25 - 2) + k(1.25 - 3) = 0.2265625 - 0.0234375 = 0.203125 -> 20.3 -> 20. By symmetry column 3 is
    100 * 0.796875 -> 80; column 4: 100 * (k(0.25) + k(0.75) - 0.0703125 ... ) = 109.375 -> 109; column 1 is
    100 * (k(1.75) + k(1.25)) = -9.375 -> saturates to 0.
    """
    assert _cubic(np.array([0.25, 0.75, 1.25, 1.75])).tolist() == [0.8671875, 0.2265625, -0.0703125, -0.0234375]
    out = imresize(np.array([[0, 100]], dtype=np.uint8), 2)
    assert out.tolist() == [[0, 20, 80, 109], [0, 20, 80, 109]]


def test_downscale_output_size_is_ceil():
    img = np.zeros((10, 7, 3), np.uint8)
    assert imresize(img, 1 / 4).shape == (3, 2, 3)


def test_constant_image_stays_constant():
    img = np.full((17, 13, 3), 77, np.uint8)
    assert np.all(imresize(img, 1 / 4) == 77) and np.all(imresize(img, 4) == 77)


def test_jpeg_is_lossy_and_deterministic():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    a, b = jpeg(img, 10), jpeg(img, 10)
    assert np.array_equal(a, b) and not np.array_equal(a, img) and a.shape == img.shape
    assert np.abs(jpeg(img, 95).astype(int) - img).mean() < np.abs(a.astype(int) - img).mean()


def test_jpeg_grey_stays_grey():
    img = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))
    assert jpeg(img, 40).shape == (32, 32)


def test_degrade_and_errors():
    hr = np.full((16, 16, 3), 200, np.uint8)
    assert degrade(hr, 4, 20).shape == (4, 4, 3)
    with pytest.raises(ValueError, match="smaller than the scale"):
        degrade(np.zeros((3, 8, 3), np.uint8), 4)
    with pytest.raises(ValueError, match="quality"):
        jpeg(hr, 0)
    with pytest.raises(TypeError):
        imresize(hr.astype(np.float32), 2)
