"""guard.GuardResult: the int8 guard's verdict as the report's entries, and its refusal."""

import dataclasses

import pytest

from keras_effnet.export import debug, guard
from keras_effnet.export.verification import Score

# The report's guard entries (docs/export.md "The int8 guard"; the CLI and tests read them).
GUARD_KEYS = [
    "layer_report",
    "denylist",
    "max_accuracy_drop",
    "float_fallback",
    "ranges",
    "mse_ranges",
    "search",
]
SEARCH_KEYS = [
    "num_examples",
    "keras_top1",
    "plain_top1",
    "ranges_top1",
    "ranges_scores",
    "plain_drop_pt",
    "plain_drop_se_pt",
    "accuracy_drop_pt",
    "accuracy_drop_se_pt",
    "met",
    "history",
    "split",
]


def _score(top1, se, agreement=0.95):
    return Score(
        top1=top1,
        reference_top1=0.9,
        drop_pt=100 * (0.9 - top1),
        drop_se_pt=se,
        agreement=agreement,
        num_examples=200,
        max_abs_diff=0.5,
        mean_abs_diff=0.01,
    )


def _result(met=True):
    mse, minmax, denylisted = _score(0.87, 1.0), _score(0.86, 1.2), _score(0.895, 0.4)
    return guard.GuardResult(
        tflite=b"tflite",
        ranges="mse",
        mse_ranges={"narrowed": 3},
        layer_report=({"tensor": "a"}, {"tensor": "b"}),
        max_accuracy_drop=1.0,
        denylist=("a",),
        candidates={"mse": mse, "minmax": minmax},
        score=denylisted,
        met=met,
        history=(debug.SearchStep(0, mse), debug.SearchStep(1, denylisted)),
        split="validation",
    )


def test_guard_result_to_dict_has_the_report_keys_and_figures():
    result = _result()
    part = result.to_dict()
    assert list(part) == GUARD_KEYS
    assert list(part["search"]) == SEARCH_KEYS
    search = part["search"]
    assert part["denylist"] == ["a"] and part["float_fallback"] is True
    assert part["layer_report"] == [{"tensor": "a"}, {"tensor": "b"}]
    assert (part["ranges"], part["max_accuracy_drop"]) == ("mse", 1.0)
    assert search["num_examples"] == 200 and search["keras_top1"] == 0.9
    assert search["plain_top1"] == 0.87 and search["ranges_top1"] == {"mse": 0.87, "minmax": 0.86}
    assert search["ranges_scores"]["minmax"] == {
        "top1": 0.86,
        "drop_pt": pytest.approx(4.0),
        "drop_se_pt": 1.2,
        "agreement": 0.95,
    }
    assert (search["plain_drop_pt"], search["plain_drop_se_pt"]) == (pytest.approx(3.0), 1.0)
    assert (search["accuracy_drop_pt"], search["accuracy_drop_se_pt"]) == (
        pytest.approx(0.5),
        0.4,
    )
    assert [h["denylisted"] for h in search["history"]] == [0, 1]
    assert search["history"][1]["top1"] == 0.895
    assert search["met"] is True and search["split"] == "validation"
    assert result.plain is result.candidates["mse"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.met = False


def test_guard_result_without_a_split_or_a_target():
    assert "split" not in dataclasses.replace(_result(), split=None).to_dict()["search"]
    off = guard.GuardResult(tflite=b"x", ranges="mse", mse_ranges={"narrowed": 1})
    assert off.to_dict() == {
        "layer_report": [],
        "denylist": [],
        "ranges": "mse",
        "mse_ranges": {"narrowed": 1},
        "search": {},
    }
    assert off.met and off.plain is None and not off.float_fallback


def test_refusal_reads_the_verdict():
    message = str(guard.refusal(_result(met=False)))
    assert "on the 'validation' split (200 images)" in message
    assert "top-1 0.8700 against 0.9000" in message and "(3.0 +- 1.0 pt lost)" in message
    assert "up to 1 of the worst layers" in message and "still loses 0.5 +- 0.4 pt" in message
    assert "Received: mode='int8', max_accuracy_drop=1.0" in message
