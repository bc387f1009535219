"""MTCNN (Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional Networks", SPL
2016) as facenet-pytorch builds and runs it: P-Net, R-Net, O-Net with its module names, so that the weight files the
``facenet-pytorch`` wheel ships (``facenet_pytorch/data/{pnet,rnet,onet}.pt``, plain state_dicts) load strictly,
and `detect` is its ``MTCNN.detect`` pipeline for one image (``models/utils/detect_face.py``), step for step.

The package pins an old torch, so it is installed with ``pip install --no-deps facenet-pytorch``; the suite reads
only its weight files (found without importing the package) and never runs its code outside the parity test.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms

from benchmark.errors import InputError
from models.weights import code_digest, load_weights, package_dir, sha256_of

# facenet-pytorch's MTCNN defaults (the original release's): a face pyramid shrinking by 0.709 per level, the
# score thresholds of the three stages, the input normalisation (x - 127.5) / 128, and its R/O-Net batch size.
FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.7)
NMS_PER_SCALE, NMS_ACROSS_SCALES, NMS_STAGE = 0.5, 0.7, 0.7
BATCH = 512
# facenet-pytorch's default is 20 px; 10 px (P-Net's 12 px window on the image up-sampled x1.2) reaches further into
# WIDER FACE's tiny faces (hard: most faces are under 20 px) at about twice the time per image.
MIN_FACE_SIZE = 10
NETS = ("pnet", "rnet", "onet")


class PNet(nn.Module):
    """Proposal network: fully convolutional, 12x12 window, stride 2; box regression [N, 4, h, w] and face
    probability [N, 2, h, w]."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement network on 24x24 crops: box regression [N, 4] and face probability [N, 2]."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).flatten(1)  # (w, h, c) order: the weights were converted from Caffe that way
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output network on 48x48 crops: box regression [N, 4], five landmarks [N, 10] and face probability [N, 2]."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).flatten(1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)


@dataclass
class Cascade:
    """The three networks and the files they came from."""

    pnet: PNet
    rnet: RNet
    onet: ONet
    files: dict[str, Path] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> Cascade:
        return Cascade(self.pnet.to(device), self.rnet.to(device), self.onet.to(device), self.files)


def facenet_weights_dir() -> Path:
    """``facenet_pytorch/data`` of the installed package, found without importing it (its torch pin may not hold)."""
    root = package_dir("facenet_pytorch")
    if root is None:
        raise InputError("mtcnn: the facenet-pytorch package is not installed (its weight files are used): "
                         "pip install --no-deps facenet-pytorch")
    return root / "data"


def load_mtcnn(weights_dir: str | Path | None = None) -> Cascade:
    """P-, R- and O-Net from ``pnet.pt``, ``rnet.pt``, ``onet.pt`` in `weights_dir` (default: facenet-pytorch's),
    loaded strictly (weights_only); a missing or wrong file raises InputError naming it."""
    folder = Path(weights_dir) if weights_dir is not None else facenet_weights_dir()
    files = {name: folder / f"{name}.pt" for name in NETS}
    nets = [load_weights(net, files[name]) for net, name in zip((PNet(), RNet(), ONet()), NETS)]
    return Cascade(*nets, files=files)


def area_resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """facenet-pytorch ``imresample``: area interpolation of a [N, 3, H, W] float batch."""
    return F.interpolate(image, size=size, mode="area")


def normalise(image: torch.Tensor) -> torch.Tensor:
    return (image - 127.5) * 0.0078125


def pyramid(height: int, width: int, min_face_size: float, factor: float = FACTOR) -> list[float]:
    """Scales at which P-Net's 12 px window is a face of min_face_size, min_face_size / factor, ... down to the
    shorter side of the image."""
    scale = 12.0 / min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def proposals(reg: torch.Tensor, probs: torch.Tensor, scale: float, threshold: float) -> torch.Tensor:
    """[K, 9] x1, y1, x2, y2, score, 4 regression offsets of the P-Net cells (one image) with probability at least
    `threshold`, each the 12 px window of its cell in image pixels (``generateBoundingBox``)."""
    mask = probs >= threshold
    cells = mask.nonzero().to(reg.dtype).flip(1)  # x, y
    q1 = ((2 * cells + 1) / scale).floor()
    q2 = ((2 * cells + 12) / scale).floor()
    return torch.cat([q1, q2, probs[mask].unsqueeze(1), reg[:, mask].T], dim=1)


def regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """``bbreg``: move each side by its offset times the box's +1 pixel width or height (in place)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] = torch.stack([boxes[:, 0] + reg[:, 0] * w, boxes[:, 1] + reg[:, 1] * h,
                                boxes[:, 2] + reg[:, 2] * w, boxes[:, 3] + reg[:, 3] * h], dim=1)
    return boxes


def square(boxes: torch.Tensor) -> torch.Tensor:
    """``rerec``: each box grown to a square of its longer side about its centre (in place)."""
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.max(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side.unsqueeze(1)
    return boxes


def crops(image: torch.Tensor, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The boxes' pixels clipped to the image (``pad``: truncated, 1-based x..ex, y..ey), each area-resized to
    size x size and normalised, and the mask of boxes that have any pixel (facenet-pytorch assumes all do)."""
    h, w = image.shape[2:]
    x1, y1, x2, y2 = boxes[:, :4].trunc().int().cpu().numpy().T
    x1, y1 = np.maximum(x1, 1), np.maximum(y1, 1)
    x2, y2 = np.minimum(x2, w), np.minimum(y2, h)
    keep = (y2 > y1 - 1) & (x2 > x1 - 1)
    batch = [area_resize(image[:, :, y1[k] - 1:y2[k], x1[k] - 1:x2[k]], (size, size)) for k in np.flatnonzero(keep)]
    empty = image.new_zeros((0, 3, size, size))
    return normalise(torch.cat(batch) if batch else empty), torch.as_tensor(keep, device=boxes.device)


def batched(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`net` over `x` in chunks of BATCH (facenet-pytorch ``fixed_batch_process``, to bound GPU memory), channels
    last (max pooling on CPU is about 6x faster in that layout; the values are the same)."""
    x = x.contiguous(memory_format=torch.channels_last)
    outs = [net(x[i:i + BATCH]) for i in range(0, len(x), BATCH)]
    return tuple(torch.cat(parts) for parts in zip(*outs))


def nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS with overlap = intersection / smaller area (+1 pixel sides), the 'Min' strategy of the final
    stage (``nms_numpy``; kept in its float32 arithmetic and its argsort order)."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    pick = []
    while order.size:
        i, rest = order[-1], order[:-1]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        pick.append(i)
        order = rest[iw * ih / np.minimum(area[i], area[rest]) <= threshold]
    return np.array(pick, dtype=np.int64)


@torch.inference_mode()
def detect(nets: Cascade, image: np.ndarray, min_face_size: float = MIN_FACE_SIZE,
           thresholds: tuple[float, float, float] = THRESHOLDS, factor: float = FACTOR) -> np.ndarray:
    """Faces in one uint8 RGB HxWx3 image: [N, 5] float32 x1, y1, x2, y2, O-Net face probability (facenet-pytorch
    ``detect_face`` for one image).

    Stage 1: P-Net at every pyramid scale (image area-resized to int(h * s + 1) x int(w * s + 1)), cells at
    thresholds[0], NMS 0.5 per scale, NMS 0.7 across scales, regression (without +1), squared. Stage 2: 24x24 crops,
    R-Net at thresholds[1], NMS 0.7, regression, squared. Stage 3: 48x48 crops, O-Net at thresholds[2], regression,
    NMS 0.7 over the smaller box ('Min')."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"MTCNN needs a uint8 RGB HxWx3 image, got {image.dtype} {image.shape}")
    device = next(nets.pnet.parameters()).device
    img = torch.as_tensor(image.copy(), device=device).permute(2, 0, 1).unsqueeze(0).float()
    h, w = image.shape[:2]
    none = np.zeros((0, 5), np.float32)

    found = []
    for scale in pyramid(h, w, min_face_size, factor):
        level = normalise(area_resize(img, (int(h * scale + 1), int(w * scale + 1))))
        reg, probs = nets.pnet(level.contiguous(memory_format=torch.channels_last))
        boxes = proposals(reg[0], probs[0, 1], scale, thresholds[0])
        found.append(boxes[nms(boxes[:, :4], boxes[:, 4], NMS_PER_SCALE)])
    boxes = torch.cat(found) if found else img.new_zeros((0, 9))
    boxes = boxes[nms(boxes[:, :4], boxes[:, 4], NMS_ACROSS_SCALES)]
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    boxes = square(torch.cat([boxes[:, :2] + boxes[:, 5:7] * wh, boxes[:, 2:4] + boxes[:, 7:9] * wh,
                              boxes[:, 4:5]], dim=1))
    if not len(boxes):
        return none

    data, keep = crops(img, boxes, 24)
    boxes = boxes[keep]
    if not len(boxes):
        return none
    reg, probs = batched(nets.rnet, data)
    score = probs[:, 1]
    passed = score > thresholds[1]
    boxes = torch.cat([boxes[passed, :4], score[passed, None]], dim=1)
    pick = nms(boxes[:, :4], boxes[:, 4], NMS_STAGE)
    boxes = square(regress(boxes[pick], reg[passed][pick]))
    if not len(boxes):
        return none

    data, keep = crops(img, boxes, 48)
    boxes = boxes[keep]
    if not len(boxes):
        return none
    reg, _, probs = batched(nets.onet, data)
    score = probs[:, 1]
    passed = score > thresholds[2]
    boxes = regress(torch.cat([boxes[passed, :4], score[passed, None]], dim=1), reg[passed]).cpu().numpy()
    return boxes[nms_min(boxes[:, :4], boxes[:, 4], NMS_STAGE)] if len(boxes) else none


@dataclass
class MTCNNDetector:
    """The Tiny Faces task's detector interface (uint8 RGB image -> [N, 5] x1, y1, x2, y2, score) over `detect`.

    Scores are O-Net probabilities in (thresholds[2], 1], not logits; the WIDER evaluation min-max normalises scores
    over the dataset anyway (DESIGN 6.3), so they rank as they would as logits."""

    nets: Cascade
    min_face_size: float = MIN_FACE_SIZE
    thresholds: tuple[float, float, float] = THRESHOLDS
    factor: float = FACTOR
    name: str = "mtcnn"

    @property
    def cache_key(self) -> str:
        """Identity for reusing a finished row: the weight files' sha256, the settings and the code's digest."""
        files = "|".join(f"{name}={sha256_of(path)}" for name, path in self.nets.files.items())
        code = code_digest(self, self.nets.pnet, self.nets.rnet, self.nets.onet)
        return (f"mtcnn|{files}|min_face_size={self.min_face_size}|thresholds={list(self.thresholds)}|"
                f"factor={self.factor}|code={code}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return detect(self.nets, image, self.min_face_size, self.thresholds, self.factor)


def mtcnn_detector(min_face_size: float = MIN_FACE_SIZE, device: torch.device | str = "cpu",
                   weights_dir: str | Path | None = None) -> MTCNNDetector:
    """MTCNN with facenet-pytorch's weights (or those in `weights_dir`) on `device`."""
    if min_face_size <= 0:
        raise InputError(f"mtcnn: min_face_size must be positive, got {min_face_size}")
    return MTCNNDetector(load_mtcnn(weights_dir).to(device), min_face_size)
