"""models.tiny_faces: released checkpoint layout, loader errors, box decoding by hand, the multi-scale test."""
import math

import numpy as np
import pytest
import scipy.io
import torch
import torchvision
from torch import nn

from benchmark.datasets.package_photos import package_photo_paths
from benchmark.degrade import imresize
from benchmark.errors import InputError
from benchmark.images import read_image
from models import tiny_faces as T
from models.weights import TINY_FACES_R18, TINY_FACES_VGG16, sha256_of


def reference_keys(shared_data):
    path = shared_data / "reference" / "state_dict_keys" / "tiny_faces_pytorch.txt"
    keys = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape = line.split(" ", 1)
            keys[name] = [int(v) for v in shape.split("]")[0].strip("[ ").split(",") if v.strip()]
    return keys


def test_resnet101_matches_released_keys(shared_data):
    keys = reference_keys(shared_data)
    state = T.tiny_faces_resnet101().state_dict()
    assert len(keys) == 571
    assert list(state) == list(keys)
    assert {k: list(v.shape) for k, v in state.items()} == keys


def test_released_checkpoint_layout_loads_strict(shared_data, tmp_path):
    gen = torch.Generator().manual_seed(0)
    state = {k: (torch.randint(0, 100, s, generator=gen) if k.endswith("num_batches_tracked")
                 else torch.randn(s, generator=gen)) for k, s in reference_keys(shared_data).items()}
    torch.save({"epoch": 50, "batch_size": 12, "model": state, "optimizer": {"state": {}, "param_groups": []}},
               tmp_path / "checkpoint_50.pth")
    model = T.load_tiny_faces(tmp_path / "checkpoint_50.pth")
    assert not model.training
    assert torch.equal(model.score_res3.weight, state["score_res3.weight"])
    assert torch.equal(model.model.layer3[22].conv3.weight, state["model.layer3.22.conv3.weight"])
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "bare.pth")  # bare, from DataParallel
    assert torch.equal(T.load_tiny_faces(tmp_path / "bare.pth").score4_upsample.weight,
                       state["score4_upsample.weight"])


def test_light_variant_round_trip(tmp_path):
    model = T.tiny_faces_resnet18()
    assert "model.fc.weight" not in model.state_dict()
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    assert type(T.load_tiny_faces(tmp_path / "r18.pth").model.layer3[0]).__name__ == "BasicBlock"
    out = model.eval()(torch.zeros(1, 3, 40, 56))
    assert out.shape == (1, 125, 5, 7)


def test_vgg16_variant_covers_odd_sizes_and_round_trips(tmp_path):
    """conv4_3 at stride 8 and conv5_2 at stride 16 (pool4 rounds up): the summed map has res3's size."""
    model = T.tiny_faces_vgg16().eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 72, 100)).shape == (1, 125, 9, 12)
    torch.save(model.state_dict(), tmp_path / "vgg.pth")
    loaded = T.load_tiny_faces(tmp_path / "vgg.pth")
    assert isinstance(loaded.model, nn.Sequential) and loaded.model[T.VGG_RES3_END].ceil_mode


def test_trunk_stages_partition_the_trunk_in_order():
    """VGG16-BN: five stages covering features[:40], conv1-conv4 each ending in its pool; ResNet: stem + 3 layers."""
    vgg = T.tiny_faces_vgg16()
    stages = T.trunk_stages(vgg)
    assert [len(s) for s in stages] == [7, 7, 10, 10, 6]
    assert [m for s in stages for m in s] == list(vgg.model)
    assert all(isinstance(s[-1], nn.MaxPool2d) for s in stages[:4]) and isinstance(stages[4][-1], nn.ReLU)
    r18 = T.tiny_faces_resnet18()
    assert [sum(p.numel() for p in s.parameters()) for s in T.trunk_stages(r18)][0] == 64 * 3 * 49 + 128
    assert T.trunk_stages(r18)[3] is r18.model.layer3


def test_craft_trunk_loads_strictly_into_the_vgg16_variant():
    """EasyOCR's CRAFT VGG16-BN (conv1_1-conv5_2, 84 tensors) is exactly the vgg16 variant's trunk."""
    try:
        trunk = T.craft_vgg16_bn_trunk()
    except InputError as exc:
        pytest.skip(str(exc))
    model = T.tiny_faces_vgg16()
    assert trunk.keys() == model.model.state_dict().keys() and len(trunk) == 84
    model.model.load_state_dict(trunk, strict=True)
    assert torch.equal(model.model[37].weight, trunk["37.weight"]) and trunk["30.weight"].shape == (512, 512, 3, 3)


def test_bundled_vgg16_detector_by_name_keeps_the_craft_trunk_it_froze():
    """--detector-weights tiny_faces_vgg16_craft: the bundled file (its sha), a vgg16 Tiny Faces loaded strictly,
    whose conv1-conv3 (trained with --frozen-stages 3) are CRAFT's to float16."""
    from benchmark.tasks.tinyface import build_detector
    assert sha256_of(TINY_FACES_VGG16.path) == TINY_FACES_VGG16.sha256
    detector, key = build_detector("tiny_faces_vgg16_craft", "original", torch.device("cpu"))
    assert detector.name == "tiny_faces_vgg16_craft" and TINY_FACES_VGG16.sha256 in key
    assert isinstance(detector.model.model, nn.Sequential)
    try:
        craft = T.craft_vgg16_bn_trunk()
    except InputError as exc:
        pytest.skip(str(exc))
    trunk = detector.model.model.state_dict()
    frozen = [k for k in craft if int(k.split(".")[0]) < T.VGG_STAGE_ENDS[2]]
    assert len(frozen) == 49  # 7 convs (weight, bias) + their batch norms (5 tensors each)
    assert all(torch.equal(trunk[k].float(), craft[k].half().float() if craft[k].is_floating_point() else
                           craft[k].float()) for k in frozen)
    assert not torch.equal(trunk["37.weight"], craft["37.weight"].half().float())


def test_bad_checkpoints_name_file_and_keys(tmp_path):
    torch.save({"model": {"conv.weight": torch.zeros(1)}}, tmp_path / "foreign.pth")
    with pytest.raises(InputError) as e:
        T.load_tiny_faces(tmp_path / "foreign.pth")
    msg = str(e.value)
    assert str(tmp_path / "foreign.pth") in msg and "571 missing keys (model.conv1.weight" in msg
    assert "1 unexpected keys (conv.weight)" in msg
    state = T.tiny_faces_resnet18().state_dict()
    state["score_res3.weight"] = torch.zeros(50, 128, 1, 1)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(InputError, match=r"wrong shapes \(score_res3.weight \[50, 128, 1, 1\] \(expected \[125"):
        T.load_tiny_faces(tmp_path / "shape.pth")
    (tmp_path / "junk.pth").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(InputError, match="junk.pth: not a loadable PyTorch checkpoint"):
        T.load_tiny_faces(tmp_path / "junk.pth")
    with pytest.raises(InputError, match="not found"):
        T.load_tiny_faces(tmp_path / "absent.pth")


def test_upsampler_is_frozen_bilinear():
    model = T.tiny_faces_resnet18()
    w = model.score4_upsample.weight
    assert not w.requires_grad
    ramp = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.equal(w[7, 7], torch.outer(ramp, ramp)) and w[7, 8].abs().sum() == 0


def test_templates_are_the_scaled_release_set(shared_data):
    mat = scipy.io.loadmat(str(shared_data / "widerface" / "templates" / "RefBox_N25_scaled.mat"))
    assert np.array_equal(T.TEMPLATES, mat["clusters"])


def test_template_selection():
    assert T.template_ids(0.5).tolist() == list(range(4, 12))
    assert T.template_ids(1).tolist() == list(range(4, 12))
    assert T.template_ids(2).tolist() == list(range(4, 12)) + list(range(18, 25))
    assert T.template_ids(2, "typeA").tolist() == list(range(4, 12))
    for scale in (0.25, 0.5, 1, 2):
        assert T.template_ids(scale, "port").tolist() == list(range(25))
        assert T.port_zeroed_columns(scale).tolist() == list(range(4)) + list(range(12, 25))
    with pytest.raises(ValueError):
        T.template_ids(1, "other")


def test_decode_one_template_by_hand():
    score = torch.full((125, 6, 7), -10.0)
    t, fy, fx = 5, 2, 3  # template 5: [-34.5, -43.5, 34.5, 43.5] -> w_t = 70, h_t = 88
    score[t, fy, fx] = 2.0
    score[25 + t, fy, fx], score[50 + t, fy, fx] = 0.25, -0.5  # tx, ty
    score[75 + t, fy, fx], score[100 + t, fy, fx] = 0.5, 0.0  # tw, th
    boxes, logits = T.decode(score, 0.5, T.template_ids(0.5))
    cx, cy = 3 * 8 - 1 + 70 * 0.25, 2 * 8 - 1 + 88 * -0.5  # 40.5, -29
    w, h = 70 * math.exp(0.5), 88.0
    expected = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) / 0.5
    assert boxes.shape == (1, 4) and logits.tolist() == [2.0]
    np.testing.assert_allclose(boxes[0], expected, rtol=1e-6)
    assert T.decode(score, 1.0, np.array([6]))[0].shape == (0, 4)  # other templates see nothing


def port_get_bboxes_cells(score_cls, scale, prob_thresh=T.PROB_THRESH):
    """(fy, fx, template) of the detections of tiny-faces-pytorch's `get_bboxes`, transcribed: its selection on the
    (B, H, W, T) array, `prob_cls[:, :, invalid_template_id] = 0.0`, then `np.where(prob_cls > prob_thresh)`."""
    templates = T.TEMPLATES
    all_scale_template_ids = np.arange(4, 12)
    one_scale_template_ids = np.arange(18, 25)
    ignored_template_ids = np.setdiff1d(np.arange(25), np.concatenate((all_scale_template_ids,
                                                                       one_scale_template_ids)))
    template_scales = templates[:, 4]
    if scale < 1:
        invalid_one_scale_idx = np.where(template_scales[one_scale_template_ids] >= 1.0)
    else:
        invalid_one_scale_idx = np.where(template_scales[one_scale_template_ids] != 1.0)
    invalid_template_id = np.concatenate((ignored_template_ids, one_scale_template_ids[invalid_one_scale_idx]))
    prob_cls = 1 / (1 + np.exp(-score_cls.numpy().transpose((1, 2, 0))[None]))
    prob_cls[:, :, invalid_template_id] = 0.0
    _, fy, fx, fc = np.where(prob_cls > prob_thresh)
    return list(zip(fy.tolist(), fx.tolist(), fc.tolist()))


def test_port_templates_zero_columns_and_run_all_templates():
    score = torch.full((125, 2, 27), -10.0)
    cells = {(1, 5, 0): 1.0,    # template 0 (never run by the original) in a kept column: the port detects it
             (0, 7, 20): 2.0,   # type B at 1x: port yes, original only at 2x, typeA never
             (0, 2, 5): 3.0,    # type A in column 2, zeroed by the port (template id 2 is ignored)
             (1, 26, 6): 4.0,   # type A in column 26, kept everywhere
             (0, 20, 8): 5.0}   # type A in column 20, zeroed by the port (type-B id 20)
    for (fy, fx, t), logit in cells.items():
        score[t, fy, fx] = logit
    for scale in (0.5, 1.0, 2.0):
        found = port_get_bboxes_cells(score[:25], scale)
        assert found == [(0, 7, 20), (1, 5, 0), (1, 26, 6)]
        _, logits = T.decode(score, scale, T.template_ids(scale, "port"), zeroed_columns=T.port_zeroed_columns(scale))
        assert logits.tolist() == [cells[c] for c in found]
    assert sorted(T.decode(score, 1.0, T.template_ids(1.0))[1]) == [3.0, 4.0, 5.0]
    assert sorted(T.decode(score, 2.0, T.template_ids(2.0))[1]) == [2.0, 3.0, 4.0, 5.0]
    assert sorted(T.decode(score, 2.0, T.template_ids(2.0, "typeA"))[1]) == [3.0, 4.0, 5.0]
    with pytest.raises(IndexError):  # the port's crash on a level narrower than 25 columns
        port_get_bboxes_cells(score[:25, :, :24], 1.0)


class FixedMap(nn.Module):
    """Stands in for the network: one confident type-A and one type-B cell on every level."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        h, w = math.ceil(x.shape[2] / 8), math.ceil(x.shape[3] / 8)
        out = torch.zeros((1, 125, h, w))
        out[0, :25] = -20.0
        out[0, 6, 1, 1] = float(x.shape[3])  # logits that tell the levels apart
        out[0, 20, 2, 2] = 1.0
        return out


def test_detect_pyramid_templates_and_max_side():
    image = np.zeros((60, 100, 3), np.uint8)
    model = FixedMap()
    dets = T.detect(model, image, scales=(0.5, 1, 2), nms_iou=1.0)
    assert sorted(dets[:, 4].tolist()) == [1.0, 50.0, 100.0, 200.0]  # A at 3 levels, B (logit 1) at 2x only
    assert np.all(np.diff(dets[:, 4]) <= 0)
    b = dets[dets[:, 4] == 1.0][0]
    centre = 2 * 8 - 1  # cell (2, 2) at 2x, boxes divided by 2
    assert (b[0] + b[2]) / 2 == pytest.approx(centre / 2)
    assert len(T.detect(model, image, scales=(0.5, 1, 2), nms_iou=1.0, templates="typeA")) == 3
    wide = np.zeros((100, 400, 3), np.uint8)  # 50 columns at 1x: B (column 2, zeroed) and A (column 1, zeroed)
    assert len(T.detect(model, wide, scales=(1,), nms_iou=1.0, templates="port")) == 0
    assert len(T.detect(model, wide, scales=(1,), nms_iou=1.0, templates="typeA")) == 1
    with pytest.raises(InputError, match=r"image 400x100: --templates port cannot run its 0.25x level \(13 feature "):
        T.detect(model, wide, scales=(1, 0.5, 0.25), templates="port")  # 0.5x: 25 columns, just enough
    assert sorted(T.detect(model, image, scales=(1, 2), nms_iou=1.0, max_side=150)[:, 4]) == [100.0]
    with pytest.raises(InputError, match="no pyramid level"):
        T.detect(model, image, scales=(2,), max_side=150)
    with pytest.raises(InputError, match="uint8 RGB"):
        T.detect(model, np.zeros((60, 100), np.uint8))


def test_detector_reuse_key_changes_with_the_detection_code(edit_code):
    """Rows detected before a change to the Tiny Faces code are not reused after it; the same code, the same key."""
    from benchmark.tasks.tinyface import build_detector
    key = build_detector(None, "original", torch.device("cpu"))[1]
    assert TINY_FACES_R18.sha256 in key and build_detector(None, "original", torch.device("cpu"))[1] == key
    edit_code("models.tiny_faces")
    assert build_detector(None, "original", torch.device("cpu"))[1] != key


def test_detector_runs_a_real_network():
    torch.manual_seed(0)
    detector = T.TinyFacesDetector(T.tiny_faces_resnet18(), scales=(0.5, 1.0), prob_thresh=0.3)
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    dets = detector(image)
    assert dets.ndim == 2 and dets.shape[1] == 5 and np.isfinite(dets).all()
    assert np.all(np.diff(dets[:, 4]) <= 0)


def test_detector_under_bf16_and_channels_last_finds_the_same_faces():
    """The bundled detector on the astronaut photo (her face: logit 6.4): under bf16 autocast and NHWC the five
    strongest detections overlap fp32's (IoU > 0.95) with logits within 0.1."""
    image = imresize(read_image(package_photo_paths(["astronaut"])["astronaut"]), 0.5)
    fp32 = T.TinyFacesDetector.from_checkpoint(TINY_FACES_R18.path, scales=(0.5, 1.0))(image)
    bf16 = T.TinyFacesDetector.from_checkpoint(TINY_FACES_R18.path, scales=(0.5, 1.0), amp="bf16",
                                               channels_last=True)(image)
    assert fp32[0, 4] > 5 and np.abs(bf16[:5, 4] - fp32[:5, 4]).max() < 0.1
    iou = torchvision.ops.box_iou(torch.from_numpy(bf16[:5, :4]), torch.from_numpy(fp32[:5, :4])).diagonal()
    assert iou.min() > 0.95
    with pytest.raises(ValueError, match="amp"):
        T.TinyFacesDetector(T.tiny_faces_resnet18(), amp="fp8")
