"""benchmark/restore.py: tiling equals untiled, interfaces, Y-channel stage, self-ensemble, downsample-back."""
import numpy as np
import pytest
import torch

from benchmark import restore
from benchmark.datasets.package_photos import package_photo_paths
from benchmark.degrade import degrade, imresize, modcrop
from benchmark.images import read_image
from models.cajnn import cajnn_lite
from models.car import dncnn3


@pytest.fixture(scope="module")
def lite_restorer_model():
    torch.manual_seed(0)
    return cajnn_lite().eval()


def test_tiled_equals_untiled():
    """The bundled trained CAJNN on a real photo: 32-pixel tiles with 24 pixels of context match one pass."""
    photo = read_image(package_photo_paths(["astronaut"])["astronaut"])
    lr = degrade(modcrop(photo[100:380, 140:500], 4), 4, 20)  # 70x90 LR, JPEG QF 20
    untiled = restore.cajnn(device="cpu", tile=None)(lr)
    tiled = restore.cajnn(device="cpu", tile=32, overlap=24)(lr)
    assert tiled.shape == (280, 360, 3)
    assert np.abs(tiled.astype(int) - untiled).max() <= 1


def test_tile_starts_cover_the_image():
    assert restore._tile_starts(10, 32) == [0]
    assert restore._tile_starts(70, 32) == [0, 32, 38]


def test_cache_key_names_weights_and_settings(lite_restorer_model):
    a = restore.NetworkRestorer(lite_restorer_model, "cajnn", 4, "abc", device="cpu")
    b = restore.NetworkRestorer(lite_restorer_model, "cajnn", 4, "abc", device="cpu", amp="bf16")
    assert "abc" in a.cache_key and a.cache_key != b.cache_key


def test_bf16_autocast_close_to_fp32(lite_restorer_model):
    img = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    fp32 = restore.NetworkRestorer(lite_restorer_model, "cajnn", 4, device="cpu")(img)
    bf16 = restore.NetworkRestorer(lite_restorer_model, "cajnn", 4, device="cpu", amp="bf16")(img)
    assert np.abs(bf16.astype(int) - fp32).mean() < 2


def test_ensemble_of_an_equivariant_model_is_the_model():
    """Bilinear-skip-only CAJNN (last conv zeroed) commutes with flips/rotations: ensemble == plain."""
    model = cajnn_lite().eval()
    with torch.no_grad():
        model.conv_last.weight.zero_()
        model.conv_last.bias.zero_()
    img = np.random.default_rng(2).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    plain = restore.NetworkRestorer(model, "m", 4, device="cpu")(img)
    ens = restore.NetworkRestorer(model, "m", 4, device="cpu", ensemble=True)
    assert ens.name == "m_ensemble"
    assert np.abs(ens(img).astype(int) - plain).max() <= 1


def test_y_channel_stage_keeps_chroma_and_identity_round_trips():
    model = dncnn3().eval()
    with torch.no_grad():
        model.model[-1].weight.zero_()
        model.model[-1].bias.zero_()  # residual 0: output = input
    img = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = restore.NetworkRestorer(model, "dncnn3", 1, device="cpu", on_y=True)(img)
    assert np.abs(out.astype(int) - img).max() <= 1


def test_composites():
    img = np.random.default_rng(4).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    bic = restore.Bicubic(4)
    assert np.array_equal(bic(img), imresize(img, 4))
    down = restore.ThenDownsample(bic)
    assert down(img).shape == img.shape and down.name == "bicubic_x4_down" and down.scale == 1
    two = restore.TwoStage(restore.Identity(), bic)
    assert two.scale == 4 and np.array_equal(two(img), bic(img)) and "bicubic_x4" in two.cache_key
    assert restore.count_params(two) == 0


def test_too_small_image_is_refused(lite_restorer_model):
    with pytest.raises(ValueError, match="too small"):
        restore.NetworkRestorer(lite_restorer_model, "cajnn", 4, device="cpu")(np.zeros((1, 5, 3), np.uint8))
