"""Shared fixtures."""
import os
from pathlib import Path

import pytest
import torch

from models.text import CASE_INSENSITIVE, Recognizer, RecognizerConfig, save_recognizer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the project (real reference data); tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (it sits beside the project, never inside it)")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def private_cache_home(tmp_path_factory):
    """Runs started by tests (in process or as subprocesses) keep their restoration cache out of the user's."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg_cache"))
    yield
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture
def edit_code(monkeypatch):
    """``edit_code("pkg.module")``: from then on `code_digest` reads that module with one more statement, as if
    someone had changed its code (the file itself is untouched)."""
    from models import weights
    original, edited = weights._module_source, set()
    monkeypatch.setattr(weights, "_module_source",
                        lambda module: original(module) + ("\nEDITED = 1\n" if module.__name__ in edited else ""))
    return edited.add


@pytest.fixture(scope="session")
def tiny_recognizer(tmp_path_factory):
    """A small random None-VGG-BiLSTM-CTC in the save_recognizer format (fast; predictions are arbitrary)."""
    torch.manual_seed(0)
    config = RecognizerConfig("None", "VGG", "BiLSTM", "CTC", num_class=37, output_channel=32, hidden_size=32)
    path = tmp_path_factory.mktemp("rec") / "tiny.pth"
    save_recognizer(path, Recognizer(config), CASE_INSENSITIVE)
    return path
