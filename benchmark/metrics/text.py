"""Word accuracy and ICDAR2019 normalized edit distance as clovaai deep-text-recognition-benchmark `test.py` has them.

The label goes through `LmdbDataset.__getitem__` (`normalize_label`): a case-insensitive model's (the default, and the
paper's) is lowercased and stripped to [0-9a-z]; with `--sensitive` it is stripped to the 94 printable characters.
`validation` then compares the prediction as it is, except with `--sensitive --data_filtering_off`, clovaai's way to
score a case-sensitive model case-insensitively, where both strings are lowercased and stripped to [0-9a-z]
(`compared`). A case-insensitive model's prediction is never normalised.
"""
import re
import string
from collections.abc import Sequence

ALPHANUMERIC = string.digits + string.ascii_lowercase  # clovaai default `--character`
PRINTABLE_94 = string.printable[:-6]  # clovaai `--sensitive` charset
_NOT_ALPHANUMERIC = re.compile(f"[^{ALPHANUMERIC}]")


def normalize_label(label: str, sensitive: bool = False) -> str:
    """The label as `LmdbDataset` gives it: lowercased and stripped to [0-9a-z], or stripped to the 94 characters."""
    if sensitive:
        return "".join(c for c in label if c in PRINTABLE_94)
    return _NOT_ALPHANUMERIC.sub("", label.lower())


def normalize_prediction(prediction: str) -> str:
    """Lowercased and stripped to [0-9a-z] (test.py, `--sensitive --data_filtering_off` only)."""
    return _NOT_ALPHANUMERIC.sub("", prediction.lower())


def compared(prediction: str, label: str, sensitive: bool = False,
             data_filtering_off: bool = False) -> tuple[str, str]:
    """(prediction, label) as test.py's `validation` compares them under its `--sensitive` and
    `--data_filtering_off` flags."""
    label = normalize_label(label, sensitive)
    if sensitive and data_filtering_off:
        return normalize_prediction(prediction), normalize_prediction(label)
    return prediction, label


def case_sensitive(charset: str | None) -> bool:
    """Whether a recognizer with this charset is scored as test.py scores a case-sensitive model (anything beyond
    [0-9a-z], or an unknown charset), i.e. with `--sensitive --data_filtering_off` for case-insensitive numbers."""
    return charset is None or not set(charset) <= set(ALPHANUMERIC)


def normalized_edit_similarity(prediction: str, label: str) -> float:
    """ICDAR2019 per-word score: 0 if either string is empty, else 1 - ED / max(len(gt), len(pred))."""
    if not label or not prediction:
        return 0.0
    from nltk.metrics.distance import edit_distance  # imported here: training images may lack nltk

    return 1.0 - edit_distance(prediction, label) / max(len(label), len(prediction))


def score(predictions: Sequence[str], labels: Sequence[str], sensitive: bool = False,
          data_filtering_off: bool = False) -> dict:
    """accuracy: % of exact matches; norm_ed: mean ICDAR2019 normalized edit similarity in [0, 1] (test.py prints it
    with 3 decimals); correct and n: the counts behind accuracy. The strings are `compared` as test.py's flags say.

    Both strings empty after normalisation count as a match (`pred == gt`) but score 0 normalized edit similarity,
    as in test.py.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if not labels:
        raise ValueError("no samples to score")
    correct, norm_ed = 0, 0.0
    for prediction, label in zip(predictions, labels):
        prediction, label = compared(prediction, label, sensitive, data_filtering_off)
        correct += prediction == label
        norm_ed += normalized_edit_similarity(prediction, label)
    n = len(labels)
    return {"accuracy": correct / n * 100, "norm_ed": norm_ed / n, "correct": correct, "n": n}


def kept_by_filter(label: str, charset: str = ALPHANUMERIC, max_length: int = 25) -> bool:
    """clovaai `LmdbDataset`'s default filtering: a label is dropped when it is longer than `max_length`
    (`batch_max_length`, on the raw label) or, lowercased, has a character outside `charset`."""
    return len(label) <= max_length and all(c in charset for c in label.lower())


def filter_labels(labels: Sequence[str], charset: str = ALPHANUMERIC, max_length: int = 25) -> list[int]:
    """Indices of the labels `kept_by_filter`."""
    return [i for i, label in enumerate(labels) if kept_by_filter(label, charset, max_length)]
