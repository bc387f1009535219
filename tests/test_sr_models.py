"""models/cajnn.py, rrdb.py, car.py, weights.py: parameter counts, shapes, key layouts, strict loading."""
import pytest
import torch

from benchmark.errors import InputError
from models.cajnn import CAJNN, CONFIGS, cajnn_lite, cajnn_paper, load_cajnn
from models.car import dncnn3, load_dncnn3
from models.rrdb import RRDB, ResidualDenseBlock, basicsr_to_esrgan, esrgan_to_basicsr, load_rrdb, rrdbnet_esrgan_psnr
from models.weights import CAJNN_LITE_CPU, save_safetensors_fp16, sha256_of


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts():
    assert n_params(cajnn_paper()) == 14_847_491  # the paper's 14.8 M (DESIGN 4)
    assert n_params(cajnn_lite()) == 835_843
    assert n_params(rrdbnet_esrgan_psnr()) == 16_697_987
    assert n_params(dncnn3()) == 665_921


def test_cajnn_output_shape_and_global_skip():
    model = cajnn_lite().eval()
    x = torch.rand(2, 3, 12, 20)
    with torch.no_grad():
        assert model(x).shape == (2, 3, 48, 80)
        for p in model.conv_last.parameters():
            p.zero_()
        skip = torch.nn.functional.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
        assert torch.allclose(model(x), skip)


def test_residual_scale_is_exactly_0_2_in_bf16():
    """Known answer: with zero weights the block adds 0.2 x (its last conv's bias). 9 x 0.2 = 1.8 rounds to
    1.796875 in bf16; a scale rounded to bf16 first (0.2002, what torch.add(..., alpha=0.2) does on bf16 tensors)
    gives 1.8046875. The RRDB's own 0.2 of an RDB output of 9 (= 0.2 x 45) gives the same."""
    rdb, rrdb = ResidualDenseBlock(8, 4), RRDB(8, 4)
    for block, last in ((rdb, rdb), (rrdb, rrdb.rdb3)):
        with torch.no_grad():
            for p in block.parameters():
                p.zero_()
            last.conv5.bias.fill_(9.0 if block is rdb else 45.0)
        x = torch.zeros(1, 8, 5, 5, dtype=torch.bfloat16)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            out = block(x)
        assert out.dtype == torch.bfloat16 and torch.all(out == 1.796875), out.unique()


def test_dncnn3_kair_key_layout():
    keys = list(dncnn3().state_dict())
    assert keys[0] == "model.0.weight" and keys[-1] == "model.38.bias" and len(keys) == 40


def test_esrgan_basicsr_round_trip(tmp_path):
    model = rrdbnet_esrgan_psnr()
    basicsr = model.state_dict()
    esrgan = basicsr_to_esrgan(basicsr)
    assert "RRDB_trunk.22.RDB3.conv5.weight" in esrgan and "trunk_conv.weight" in esrgan
    assert "upconv2.bias" in esrgan and "HRconv.weight" in esrgan and "conv_first.weight" in esrgan
    assert esrgan_to_basicsr(esrgan).keys() == basicsr.keys()
    # both file layouts load strictly, BasicSR files through params_ema
    torch.save(esrgan, tmp_path / "RRDB_PSNR_x4.pth")
    torch.save({"params_ema": basicsr, "params": basicsr}, tmp_path / "basicsr.pth")
    for name in ("RRDB_PSNR_x4.pth", "basicsr.pth"):
        loaded = load_rrdb(tmp_path / name)
        assert torch.equal(loaded.conv_last.weight, model.conv_last.weight)


def test_foreign_checkpoint_names_the_keys(tmp_path):
    torch.save(dncnn3().state_dict(), tmp_path / "dncnn.pth")
    with pytest.raises(InputError, match=r"dncnn\.pth.*missing keys: conv_first\.weight"):
        load_rrdb(tmp_path / "dncnn.pth")
    with pytest.raises(InputError, match=r"dncnn\.pth.*not a CAJNN"):
        load_cajnn(tmp_path / "dncnn.pth")
    torch.save(rrdbnet_esrgan_psnr().state_dict(), tmp_path / "rrdb.pth")
    with pytest.raises(InputError, match=r"rrdb\.pth.*unexpected keys: conv_first\.weight"):
        load_dncnn3(tmp_path / "rrdb.pth")


def test_junk_and_missing_files(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"this is not a checkpoint")
    with pytest.raises(InputError, match=r"junk\.pth: not a loadable PyTorch checkpoint"):
        load_cajnn(tmp_path / "junk.pth")
    with pytest.raises(InputError, match=r"nothere\.pth: checkpoint file not found"):
        load_cajnn(tmp_path / "nothere.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(InputError, match=r"junk\.safetensors: not a readable safetensors file"):
        load_cajnn(tmp_path / "junk.safetensors")


def test_cajnn_config_from_keys_and_fp16_safetensors(tmp_path):
    model = CAJNN(CONFIGS["lite"])
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, tmp_path / "ddp.pth")
    assert load_cajnn(tmp_path / "ddp.pth").config == CONFIGS["lite"]
    sha = save_safetensors_fp16(model.state_dict(), tmp_path / "w.safetensors", {"config": CONFIGS["lite"].to_dict()})
    assert sha == sha256_of(tmp_path / "w.safetensors")
    loaded = load_cajnn(tmp_path / "w.safetensors")
    assert torch.allclose(loaded.conv_first.weight, model.conv_first.weight, atol=1e-3)


def test_bundled_weights_match_their_record():
    assert CAJNN_LITE_CPU.path.is_file()
    assert sha256_of(CAJNN_LITE_CPU.path) == CAJNN_LITE_CPU.sha256
    assert CAJNN_LITE_CPU.path.stat().st_size < 5_000_000
    model = load_cajnn(CAJNN_LITE_CPU.path)
    assert model.config.to_dict() == {**CAJNN_LITE_CPU.config, "dilations": (1, 3, 4)}
    assert {"commands", "data", "table1"} <= CAJNN_LITE_CPU.meta.keys()
