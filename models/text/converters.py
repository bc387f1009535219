"""Label <-> index converters of clovaai `utils.py`, plus greedy decoding with the demo.py
confidence (and with EasyOCR's).

CTC: index 0 is the blank, characters follow from 1. Attention: 0 is [GO] (start token and padding), 1 is [s]
(end of sentence), characters follow from 2.
"""
import math

import torch

from benchmark.errors import InputError


def _indices(character: list[str], text: str) -> list[int]:
    lookup = {c: i for i, c in enumerate(character)}
    try:
        return [lookup[c] for c in text]
    except KeyError as exc:
        raise InputError(f"label {text!r} has character {exc.args[0]!r} outside the recognizer's charset") from None


class CTCLabelConverter:
    """['[blank]'] + charset."""

    def __init__(self, charset: str):
        self.charset = charset
        self.character = ["[blank]"] + list(charset)

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenated indices (for `CTCLoss`) and per-text lengths, both int32."""
        flat = [i for t in texts for i in _indices(self.character, t)]
        return torch.tensor(flat, dtype=torch.int32), torch.tensor([len(t) for t in texts], dtype=torch.int32)

    def decode(self, indices: torch.Tensor) -> list[str]:
        """B x T frame indices -> strings: merge repeats, then drop blanks."""
        texts = []
        for row in indices.tolist():
            chars = [self.character[c] for i, c in enumerate(row) if c != 0 and not (i > 0 and row[i - 1] == c)]
            texts.append("".join(chars))
        return texts

    def greedy(self, logits: torch.Tensor) -> list[tuple[str, float]]:
        """B x T x classes -> (text, confidence); confidence = product of the per-frame max probability (demo.py)."""
        max_prob, indices = logits.float().softmax(2).max(2)
        return list(zip(self.decode(indices), max_prob.prod(1).tolist()))

    def greedy_easyocr(self, logits: torch.Tensor) -> list[tuple[str, float]]:
        """B x T x classes -> (text, confidence) as EasyOCR `recognizer_predict` (decoder 'greedy'): the same text;
        confidence = p ** (2 / sqrt(n)), p the product of the max probability over the n non-blank frames
        (`custom_mean`), 0 when every frame is blank."""
        max_prob, indices = logits.float().softmax(2).max(2)
        results = []
        for text, probs, row in zip(self.decode(indices), max_prob, indices):
            kept = probs[row != 0]
            results.append((text, float(kept.prod() ** (2.0 / math.sqrt(len(kept)))) if len(kept) else 0.0))
        return results


class AttnLabelConverter:
    """['[GO]', '[s]'] + charset."""

    def __init__(self, charset: str):
        self.charset = charset
        self.character = ["[GO]", "[s]"] + list(charset)

    def encode(self, texts: list[str], batch_max_length: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
        """B x (batch_max_length + 2) int64: [GO], the text, [s], then [GO] padding; lengths count the [s]."""
        batch = torch.zeros(len(texts), batch_max_length + 2, dtype=torch.long)
        for row, t in enumerate(texts):
            if len(t) > batch_max_length:
                raise InputError(f"label {t!r} is longer than batch_max_length={batch_max_length}")
            idx = _indices(self.character, t) + [1]
            batch[row, 1:1 + len(idx)] = torch.tensor(idx)
        return batch, torch.tensor([len(t) + 1 for t in texts], dtype=torch.int32)

    def decode(self, indices: torch.Tensor) -> list[str]:
        """B x steps indices -> raw strings including the '[s]' and anything after it, as clovaai's `decode`."""
        return ["".join(self.character[i] for i in row) for row in indices.tolist()]

    def greedy(self, logits: torch.Tensor) -> list[tuple[str, float]]:
        """B x steps x classes -> (text, confidence) exactly as test.py/demo.py: the steps' characters are joined
        ('[GO]' and '[s]' as text, `decode`) and cut before the first '[s]' of that string (`pred.find('[s]')`;
        without one the index is -1, so the last character is dropped). The confidence is the product of the max
        probabilities of the steps before that string index (`pred_max_prob[:pred_EOS]`, the index used as a step
        count as test.py does), 0 for an empty prediction (test.py's fallback).
        """
        max_prob, indices = logits.float().softmax(2).max(2)
        results = []
        for text, probs in zip(self.decode(indices), max_prob):
            end = text.find("[s]")
            kept = probs[:end]
            results.append((text[:end], float(kept.prod()) if len(kept) else 0.0))
        return results
