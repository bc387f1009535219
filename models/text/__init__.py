"""Scene-text recognizers: the clovaai four-stage family (TPS / VGG, RCNN, ResNet / BiLSTM / CTC, Attn)."""
from models.text.converters import AttnLabelConverter, CTCLabelConverter
from models.text.model import (
    CASE_INSENSITIVE,
    CASE_SENSITIVE,
    EASYOCR_ENGLISH_G2,
    EASYOCR_G2_CONFIG,
    Recognizer,
    RecognizerConfig,
    TextRecognizer,
    adjust_contrast_grey,
    clovaai_transform,
    converter_for,
    easyocr_english_g2,
    easyocr_transform,
    find_easyocr_english_g2,
    load_recognizer,
    none_vgg_bilstm_ctc,
    save_recognizer,
    transform_for,
    trba,
)

__all__ = [
    "AttnLabelConverter", "CTCLabelConverter", "CASE_INSENSITIVE", "CASE_SENSITIVE", "EASYOCR_ENGLISH_G2",
    "EASYOCR_G2_CONFIG", "Recognizer", "RecognizerConfig", "TextRecognizer", "adjust_contrast_grey",
    "clovaai_transform", "converter_for", "easyocr_english_g2", "easyocr_transform", "find_easyocr_english_g2",
    "load_recognizer", "none_vgg_bilstm_ctc", "save_recognizer", "transform_for", "trba",
]
