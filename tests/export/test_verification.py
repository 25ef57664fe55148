"""verification.Score: the typed figures of a file against its float reference."""

import dataclasses

import numpy as np
import pytest

from keras_effnet.export import verification
from keras_effnet.export.verification import Score, Verification

# The keys of `<output>.verify.json` that come from a score (docs/export.md, tests read them).
REPORT_KEYS = [
    "num_examples",
    "keras_top1",
    "tflite_top1",
    "top1_agreement",
    "top1_drop_pt",
    "top1_drop_se_pt",
    "max_abs_diff",
    "mean_abs_diff",
]


def _known():
    """Eight images: reference right on 6, candidate right on 5 (2 lost, 1 gained)."""
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    reference = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1, 0, 0]]
    candidate = np.eye(4, dtype=np.float32)[[0, 1, 2, 0, 0, 2, 2, 0]]
    candidate[0, 0] = 0.75  # One output off by 0.25 where both agree.
    return reference, candidate, labels


def test_score_from_known_predictions_has_the_exact_figures():
    reference, candidate, labels = _known()
    score = verification.compare(reference, candidate, labels)
    assert isinstance(score, Score)
    assert score.num_examples == 8
    assert score.reference_top1 == 6 / 8 and score.top1 == 5 / 8
    assert score.drop_pt == pytest.approx(100 * 1 / 8)
    # Per image: +1 (image 3), +1 (image 5), -1 (image 6), five 0: mean 1/8.
    per_image = np.array([0, 0, 0, 1, 0, 1, -1, 0], np.float64)
    expected_se = per_image.std(ddof=1) / np.sqrt(8)
    assert score.drop_se_pt == pytest.approx(100 * expected_se)
    assert score.bound_pt == pytest.approx(score.drop_pt + score.drop_se_pt)
    # Same top-1 answer on images 0, 1, 2, 4, 7.
    assert score.agreement == 5 / 8
    assert score.max_abs_diff == 1.0
    assert score.mean_abs_diff == pytest.approx((0.25 + 6 * 1.0) / 32)


def test_score_to_dict_keeps_the_report_keys_and_values():
    reference, candidate, labels = _known()
    score = verification.compare(reference, candidate, labels)
    figures = score.to_dict()
    assert list(figures) == REPORT_KEYS
    assert figures["keras_top1"] == score.reference_top1
    assert figures["tflite_top1"] == score.top1
    assert figures["top1_agreement"] == score.agreement
    assert (figures["top1_drop_pt"], figures["top1_drop_se_pt"]) == (
        score.drop_pt,
        score.drop_se_pt,
    )
    assert score.to_search_dict() == {
        "top1": score.top1,
        "drop_pt": score.drop_pt,
        "drop_se_pt": score.drop_se_pt,
        "agreement": score.agreement,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        score.top1 = 1.0


def test_score_from_top1_alone_has_no_error_bar_or_agreement():
    score = Score.from_top1(0.85, 0.9)
    assert score.drop_pt == pytest.approx(5.0) and score.drop_se_pt == 0.0
    assert score.agreement is None and score.num_examples is None
    assert score.to_search_dict() == {
        "top1": 0.85,
        "drop_pt": pytest.approx(5.0),
        "drop_se_pt": 0.0,
    }


def test_one_image_has_no_standard_error():
    score = verification.compare(np.eye(2)[[0]], np.eye(2)[[1]], np.array([0]))
    assert score.drop_pt == 100.0 and score.drop_se_pt == 0.0 and score.agreement == 0.0


def test_verification_to_dict_is_the_report_shape():
    reference, candidate, labels = _known()
    score = verification.compare(reference, candidate, labels)
    checked = Verification(score=score, file_size_bytes=123, split="test", census={"ops": {}})
    report = checked.to_dict()
    assert list(report) == ["file_size_bytes", "split", *REPORT_KEYS, "latency", "census"]
    assert report["file_size_bytes"] == 123 and report["latency"] is None
    assert report["census"] == {"ops": {}}
