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
from models.rrdb import RRDBNet


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


@pytest.mark.parametrize("h, w, tile", [(10, 20, 32), (70, 90, 32), (37, 1181, 64), (1000, 7, 16), (257, 256, 256)])
def test_tile_grid_covers_the_image_once_within_the_tile(h, w, tile):
    covered = np.zeros((h, w), int)
    for y0, y1, x0, x1 in restore.tile_grid(h, w, tile, overlap=24):
        assert 0 < (y1 - y0) * (x1 - x0) <= tile * tile
        covered[y0:y1, x0:x1] += 1
    assert (covered == 1).all()


def test_tile_grid_cuts_equal_regions_with_the_least_context():
    """A long strip becomes five equal full-height regions (not 100-pixel squares); a 300x300 image two halves, a
    third of the pixels four shifted 256-pixel squares with 24 pixels of context would compute."""
    assert restore.tile_grid(50, 1000, 100, 8) == [(0, 50, 200 * k, 200 * (k + 1)) for k in range(5)]
    assert restore.tile_grid(300, 300, 256, 24) == [(0, 300, 0, 150), (0, 300, 150, 300)]
    assert restore.tile_grid(30, 40, 64, 24) == [(0, 30, 0, 40)]


def test_cache_key_names_weights_and_settings(lite_restorer_model):
    a = restore.NetworkRestorer(lite_restorer_model, "cajnn", 4, "abc", device="cpu")
    b = restore.NetworkRestorer(lite_restorer_model, "cajnn", 4, "abc", device="cpu", amp="bf16")
    c = restore.NetworkRestorer(lite_restorer_model, "cajnn", 4, "abc", device="cpu", channels_last=True)
    assert "abc" in a.cache_key and len({a.cache_key, b.cache_key, c.cache_key}) == 3


@pytest.mark.parametrize("channels_last", [False, True])
def test_memory_format_is_the_setting_not_the_array_strides(channels_last):
    """A C-ordered HxWx3 array viewed as NCHW has channels-last strides, a transposed (Fortran-ordered) one has
    not; the network sees the format of ``channels_last`` either way, so both restore to the same bytes."""
    restorer = restore.NetworkRestorer(cajnn_lite().eval(), "m", 4, device="cpu", channels_last=channels_last)
    wanted = torch.channels_last if channels_last else torch.contiguous_format
    seen = []
    restorer.model.conv_first.register_forward_hook(
        lambda module, args, out: seen.append(args[0].is_contiguous(memory_format=wanted)))
    img = np.random.default_rng(4).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    outs = [restorer(img), restorer(np.asfortranarray(img))]
    assert seen == [True, True]
    assert np.array_equal(*outs)


def test_cache_keys_change_with_the_code_that_computes_them(lite_restorer_model, edit_code):
    """Outputs cached before a change to a network's code, the restorer's or MATLAB bicubic's are not served
    after it; the same code gives the same key."""
    key = restore.NetworkRestorer(lite_restorer_model, "cajnn", 4, "abc", device="cpu").cache_key
    assert restore.NetworkRestorer(cajnn_lite(), "cajnn", 4, "abc", device="cpu").cache_key == key
    bicubic, down = restore.Bicubic(4).cache_key, restore.ThenDownsample(restore.Identity()).cache_key
    edit_code("models.rrdb")
    after_rrdb = restore.NetworkRestorer(lite_restorer_model, "cajnn", 4, "abc", device="cpu").cache_key
    edit_code("benchmark.restore")
    after_restore = restore.NetworkRestorer(lite_restorer_model, "cajnn", 4, "abc", device="cpu").cache_key
    assert len({key, after_rrdb, after_restore}) == 3 and restore.Bicubic(4).cache_key == bicubic
    edit_code("benchmark.degrade")
    assert restore.Bicubic(4).cache_key != bicubic
    assert restore.ThenDownsample(restore.Identity()).cache_key != down


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


def _max_difference(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    assert [x.shape for x in a] == [y.shape for y in b]
    return max(int(np.abs(x.astype(int) - y).max()) for x, y in zip(a, b))


def test_restore_many_equals_one_at_a_time_on_varied_crops():
    """Bundled CAJNN on 9 JPEG crops of a real photo, of different sizes (one larger than a 48-px tile, so tiled
    alone): batched, padded and masked, every output equals the image restored alone within 1/255, in order
    (without the masks the padding changes edges by up to 27/255)."""
    photo = read_image(package_photo_paths(["astronaut"])["astronaut"])
    sizes = [(12, 40), (14, 44), (12, 38), (20, 60), (9, 31), (16, 16), (13, 47), (21, 58), (50, 50)]
    crops = [degrade(photo[10 * k:10 * k + 4 * h, 30 * k:30 * k + 4 * w], 4, 30) for k, (h, w) in enumerate(sizes)]
    r = restore.cajnn(device="cpu", tile=48, overlap=8)
    assert max(len(b) for b in restore.size_buckets([c.shape[:2] for c in crops[:-1]], 48 * 48)) >= 3
    assert _max_difference(r.restore_many(crops), [r(c) for c in crops]) <= 1


def test_restore_many_masks_nearest_upsampling_and_y_stages():
    """A random RRDBNet (nearest x2 upsamplings, no skip) and a Y-channel DnCNN batched equal one at a time."""
    torch.manual_seed(0)
    imgs = [np.random.default_rng(k).integers(0, 256, (6 + k, 15 - k, 3), dtype=np.uint8) for k in range(5)]
    for model, scale, on_y in ((RRDBNet(num_feat=8, num_block=1, num_grow=4), 4, False), (dncnn3(), 1, True)):
        r = restore.NetworkRestorer(model.eval(), "m", scale, device="cpu", on_y=on_y)
        assert _max_difference(r.restore_many(imgs), [r(i) for i in imgs]) <= 1


def test_restore_many_on_real_ic13_crops(shared_data):
    """Real ICDAR2013 word crops, as Table II feeds them to cajnn_x4 (the 10 smallest of the first 40)."""
    from benchmark.datasets.icdar import read_icdar2013

    items = read_icdar2013(shared_data / "text" / "IC13")[:40]
    crops = sorted((read_image(i.origin) for i in items), key=lambda c: c.shape[0] * c.shape[1])[:10]
    r = restore.cajnn(device="cpu")
    assert _max_difference(restore.restore_many(r, crops), [r(c) for c in crops]) <= 1


def test_size_buckets_respect_the_pixel_cap_and_waste():
    sizes = [(10, 100), (10, 98), (30, 30), (10, 97), (31, 29), (200, 200)]
    buckets = restore.size_buckets(sizes, max_pixels=3000, max_waste=0.25)
    assert sorted(i for b in buckets for i in b) == list(range(6))
    assert [3, 1, 0] in buckets and [4, 2] in buckets and [5] in buckets  # alone, over the cap
    for b in buckets:
        h, w = max(sizes[i][0] for i in b), max(sizes[i][1] for i in b)
        assert len(b) == 1 or len(b) * h * w <= 3000
        assert len(b) == 1 or len(b) * h * w - sum(sizes[i][0] * sizes[i][1] for i in b) <= 0.25 * len(b) * h * w


def test_batches_partition_the_images_and_each_batch_rebatches_to_itself(lite_restorer_model):
    """`NetworkRestorer.batches`: images over a tile alone, the rest bucketed; a batch's images given alone form
    the same batch (what `benchmark.perf_workloads` relies on to time restore_many batch by batch)."""
    r = restore.NetworkRestorer(lite_restorer_model, "lite", 4, device="cpu", tile=48)
    sizes = [(12, 40), (50, 50), (14, 44), (12, 38), (20, 60), (9, 31), (16, 16), (13, 47), (21, 58), (49, 49)]
    batches = r.batches(sizes)
    assert sorted(i for b in batches for i in b) == list(range(len(sizes)))
    assert batches[:2] == [[1], [9]] and max(len(b) for b in batches) >= 3  # over 48 x 48 pixels: alone
    for b in batches:
        assert r.batches([sizes[i] for i in b]) == [list(range(len(b)))]
    ensemble = restore.NetworkRestorer(lite_restorer_model, "lite", 4, device="cpu", tile=48, ensemble=True)
    assert ensemble.batches(sizes) == [[i] for i in range(len(sizes))]  # rotations would move the padding


def test_restore_many_of_composites_equals_their_calls():
    imgs = [np.random.default_rng(k).integers(0, 256, (5 + k, 7, 3), dtype=np.uint8) for k in range(3)]
    for r in (restore.Bicubic(4), restore.ThenDownsample(restore.Bicubic(4)),
              restore.TwoStage(restore.Identity(), restore.Bicubic(2))):
        assert all(np.array_equal(a, b) for a, b in zip(restore.restore_many(r, imgs), [r(i) for i in imgs]))
