"""benchmark/progress.py: finished items survive a process, a torn line and another key are ignored."""
import json

from benchmark.progress import ProgressLog


def test_records_are_seen_by_a_later_run_with_the_same_key(tmp_path):
    log = ProgressLog(tmp_path / "row", {"restorer": "cajnn|abc", "data": "d1"}, rank=1)
    log.append([{"id": "word_1.png", "prediction": "THE"}, {"id": "word_2.png", "prediction": "a\u00e9\u4e2d"}])
    log.close()
    again = ProgressLog(tmp_path / "row", {"data": "d1", "restorer": "cajnn|abc"})  # key order does not matter
    assert again.done() == {"word_1.png": {"id": "word_1.png", "prediction": "THE"},
                            "word_2.png": {"id": "word_2.png", "prediction": "a\u00e9\u4e2d"}}
    assert ProgressLog(tmp_path / "row", {"restorer": "other", "data": "d1"}).done() == {}


def test_a_torn_last_line_is_skipped_and_a_new_file_is_used(tmp_path):
    log = ProgressLog(tmp_path / "row", "k")
    log.append([{"id": "a", "v": 1}])
    log.close()
    (path,) = (tmp_path / "row").glob("*.jsonl")
    with open(path, "a") as f:
        f.write('{"id": "b", "v"')  # a kill in the middle of a write
    second = ProgressLog(tmp_path / "row", "k")
    assert set(second.done()) == {"a"}
    second.append([{"id": "b", "v": 2}])
    assert second.done()["b"] == {"id": "b", "v": 2} and len(list((tmp_path / "row").glob("*.jsonl"))) == 2
    second.clear()
    assert not (tmp_path / "row").exists() and second.done() == {}


def test_floats_round_trip_exactly(tmp_path):
    values = [0.1, 1 / 3, 1e-300, 123456.789012345]
    log = ProgressLog(tmp_path, "k")
    log.append([{"id": "x", "values": values}])
    assert log.done()["x"]["values"] == values and json.loads(json.dumps(values)) == values

