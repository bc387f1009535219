"""models.weights.code_digest: the code part of every reuse key follows the code, not its comments."""
import importlib
import sys

import pytest
from torch import nn

from models.weights import code_digest

SOURCE = '''"""A probe module."""
from torch import nn


class Scale(nn.Module):
    """Scales by a fifth."""

    def forward(self, x):
        return x * 0.2  # the residual scale
'''


@pytest.fixture
def probe(tmp_path, monkeypatch):
    path = tmp_path / "carsr_code_digest_probe.py"
    path.write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield path, importlib.import_module(path.stem)
    sys.modules.pop(path.stem, None)


def test_digest_follows_code_not_comments_docstrings_or_layout(probe):
    path, module = probe
    key = code_digest(module.Scale())
    assert len(key) == 12 and key == code_digest(module.Scale) == code_digest(module)  # instance, class, module
    path.write_text(SOURCE.replace("Scales by a fifth.", "Multiplies by 0.2.").replace("  # the residual scale", "")
                    .replace("return x * 0.2", "return (x\n                * 0.2)"))
    assert code_digest(module.Scale()) == key
    path.write_text(SOURCE.replace("x * 0.2", "x * 0.25"))
    assert code_digest(module.Scale()) != key


def test_torch_modules_and_duplicates_do_not_count(probe):
    _, module = probe
    assert code_digest(nn.Sequential(nn.Conv2d(1, 1, 1), module.Scale())) == code_digest(module.Scale, module)
    assert code_digest(nn.Conv2d(1, 1, 1)) == code_digest()
