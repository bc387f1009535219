"""benchmark/metrics/text.py: clovaai test.py accuracy and ICDAR2019 normalized edit distance on known answers."""
import pytest

from benchmark.metrics.text import (
    PRINTABLE_94,
    case_sensitive,
    compared,
    filter_labels,
    normalize_label,
    normalize_prediction,
    normalized_edit_similarity,
    score,
)


def test_case_insensitive_normalises_labels_not_predictions():
    result = score(["hello", "world", "its", "caf"], ["Hello!", "WORLD", "it's", "Café"])
    assert result == {"accuracy": 100.0, "norm_ed": 1.0, "correct": 4, "n": 4}
    assert normalize_label("It's 2 Late!") == "its2late"
    # test.py compares a case-insensitive model's prediction as decoded: "[GO]" left in it is not stripped
    assert score(["Hello", "ab[GO]"], ["hello", "abgo"]) == {"accuracy": 0.0, "norm_ed": pytest.approx(
        (0.8 + 1 - 4 / 6) / 2), "correct": 0, "n": 2}


def test_sensitive_with_filtering_off_normalises_both_strings():
    assert normalize_prediction("A-b C") == "abc"
    assert compared("Hello-1", "HELLO1€", sensitive=True, data_filtering_off=True) == ("hello1", "hello1")
    assert compared("Hello-1", "HELLO1€", sensitive=True) == ("Hello-1", "HELLO1")
    assert score(["Tiredness", "IT'S"], ["tiredness", "it's"], sensitive=True, data_filtering_off=True)["correct"] == 2
    assert case_sensitive(PRINTABLE_94) and case_sensitive(None) and not case_sensitive("0123abc")


def test_case_sensitive_keeps_case_and_the_94_characters():
    assert len(PRINTABLE_94) == 94 and " " not in PRINTABLE_94
    assert score(["Hello!"], ["Hello!"], sensitive=True)["accuracy"] == 100.0
    assert score(["hello!"], ["Hello!"], sensitive=True)["accuracy"] == 0.0
    # labels lose characters outside the charset (space, non-ASCII); predictions are compared as they are
    assert normalize_label("New York€", sensitive=True) == "NewYork"
    assert score(["NewYork", "New York"], ["New York€", "New York€"], sensitive=True)["correct"] == 1


def test_empty_prediction_scores_zero():
    assert score([""], ["abc"]) == {"accuracy": 0.0, "norm_ed": 0.0, "correct": 0, "n": 1}


def test_empty_label_matches_an_empty_prediction_but_scores_no_edit_similarity():
    # test.py: pred == gt counts as correct, while the ICDAR2019 term adds 0 when either string is empty
    assert score([""], ["!!!"]) == {"accuracy": 100.0, "norm_ed": 0.0, "correct": 1, "n": 1}
    assert score(["a"], ["?"]) == {"accuracy": 0.0, "norm_ed": 0.0, "correct": 0, "n": 1}


def test_normalized_edit_distance_divides_by_the_longer_string_and_averages():
    assert normalized_edit_similarity("abd", "abc") == pytest.approx(1 - 1 / 3)
    assert normalized_edit_similarity("ab", "abcd") == pytest.approx(1 - 2 / 4)
    assert normalized_edit_similarity("abcde", "abc") == pytest.approx(1 - 2 / 5)
    result = score(["abd", "kills", "x"], ["abc", "kills", ""])
    assert result["norm_ed"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert result["accuracy"] == pytest.approx(100 / 3)


def test_filter_labels_reproduces_lmdb_dataset_filtering():
    labels = ["abc", "it's", "a" * 26, "ABC", "a" * 25, "naïve", ""]
    assert filter_labels(labels) == [0, 3, 4, 6]
    assert filter_labels(["ab", "abc"], max_length=2) == [0]
    assert filter_labels(["it's", "Tea"], charset="aeist'") == [0, 1]


def test_mismatched_or_empty_input_is_refused():
    with pytest.raises(ValueError):
        score(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        score([], [])
