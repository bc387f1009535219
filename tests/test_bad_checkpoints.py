"""Every weights flag refuses a file that is not a checkpoint, and a checkpoint of another model, with one line
naming the file (the bundled weights of the other models serve as the wrong checkpoints)."""
import pytest

from benchmark.cli import main
from models.weights import CAJNN_LITE_CPU, RECOGNIZER, TINY_FACES_R18

CASES = [
    (["--task", "ocr", "--cajnn-weights"], TINY_FACES_R18, "not a CAJNN checkpoint"),
    (["--task", "ocr", "--recognizer-weights"], CAJNN_LITE_CPU, "lacks the recognizer 'config'"),
    (["--task", "tinyface", "--detector-weights"], RECOGNIZER, "not a Tiny Faces"),
    (["--task", "sr", "--methods", "rrdb", "--rrdb-weights"], CAJNN_LITE_CPU, "does not fit RRDBNet"),
    (["--task", "sr", "--methods", "dncnn_rrdb", "--rrdb-weights", "{junk}", "--dncnn-weights"], CAJNN_LITE_CPU,
     "does not fit DnCNN"),
    (["--task", "sr", "--methods", "arcnn_rrdb", "--rrdb-weights", "{junk}", "--arcnn-weights"], CAJNN_LITE_CPU,
     "does not fit ARCNN"),
]


@pytest.mark.parametrize("flags, other_model, message", CASES)
def test_checkpoint_of_another_model_is_refused(tmp_path, capsys, flags, other_model, message):
    (tmp_path / "junk.pth").write_bytes(b"\x00not a checkpoint" * 8)
    flags = [f.replace("{junk}", str(CAJNN_LITE_CPU.path)) for f in flags]
    code = main([*flags, str(other_model.path), "--limit", "1", "--out", str(tmp_path / "out"), "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flags", [case[0] for case in CASES])
def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, capsys, flags):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a checkpoint" * 8)
    flags = [f.replace("{junk}", str(junk)) for f in flags]
    code = main([*flags, str(junk), "--limit", "1", "--out", str(tmp_path / "out"), "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "junk.pth" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flags, bundled", [(["--task", "ocr", "--cajnn-weights"], "cajnn_paper_gpu"),
                                            (["--task", "tinyface", "--detector-weights"], "tiny_faces_vgg16_craft")])
def test_a_name_that_is_neither_a_file_nor_bundled_lists_the_bundled_names(tmp_path, capsys, flags, bundled):
    code = main([*flags, "cajnn_paper", "--limit", "1", "--out", str(tmp_path / "out"), "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {flags[-1]} cajnn_paper: no such file") and bundled in err
    assert len(err.strip().splitlines()) == 1
