"""Grid search: enumeration under the FLOPs constraint, ranking, round trip, resume."""

import csv
import itertools
import json
import os
import re
import subprocess
import sys

import pytest

import keras_effnet
from keras_effnet.study import grid, results

import helpers

REPO = helpers.REPO
VALUES = grid.grid_values(1.0, 1.4, 0.05)


def test_grid_values_are_rounded_and_inclusive():
    assert VALUES == [1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.35, 1.4]
    assert grid.grid_values(1.0, 1.0, 0.1) == [1.0]
    assert grid.grid_values(1.0, 1.29, 0.1) == [1.0, 1.1, 1.2]
    for kwargs, name in (
        ({"start": 0.9}, "start"),
        ({"step": 0}, "step"),
        ({"stop": 0.95}, "stop"),
        ({"step": float("nan")}, "step"),
    ):
        args = {"start": 1.0, "stop": 1.4, "step": 0.05, **kwargs}
        with pytest.raises(ValueError, match=f"`{name}`"):
            grid.grid_values(**args)


@pytest.mark.parametrize("tolerance", [0.0, 0.02, 0.05, 0.1, 0.2])
def test_enumeration_keeps_exactly_the_points_within_tolerance(tolerance):
    found = grid.enumerate_candidates(VALUES, target=2.0, tolerance=tolerance)
    expected = {
        (a, b, g)
        for a, b, g in itertools.product(VALUES, repeat=3)
        if abs(a * b * b * g * g - 2.0) <= tolerance + 1e-12
    }
    assert {(c.alpha, c.beta, c.gamma) for c in found} == expected
    assert len(found) == len(expected)  # No duplicates.
    for c in found:
        assert c.flops_factor == pytest.approx(c.alpha * c.beta**2 * c.gamma**2)
        assert abs(c.flops_factor - 2.0) <= tolerance + 1e-12
    gaps = [abs(c.flops_factor - 2.0) for c in found]
    assert gaps == sorted(gaps)


def test_enumeration_counts_and_the_papers_point():
    assert len(grid.enumerate_candidates(VALUES, tolerance=0.1)) == 75
    assert len(grid.enumerate_candidates(VALUES, tolerance=0.05)) == 39
    paper = [(1.2, 1.1, 1.15)]
    # 1.2 * 1.1^2 * 1.15^2 = 1.920: inside 0.1, outside 0.05.
    assert any(
        (c.alpha, c.beta, c.gamma) == paper[0]
        for c in grid.enumerate_candidates([1.0], tolerance=0.1, extra=paper)
    )
    assert grid.enumerate_candidates([1.0], tolerance=0.05, extra=paper) == []
    with pytest.raises(ValueError, match="tolerance"):
        grid.enumerate_candidates(VALUES, tolerance=-1)


def test_select_candidates():
    found = grid.enumerate_candidates(VALUES, tolerance=0.1)
    keep = [(1.2, 1.1, 1.15)]
    closest = grid.select_candidates(found, 5, "closest", keep=keep)
    assert len(closest) == 5 and (1.2, 1.1, 1.15) in {(c.alpha, c.beta, c.gamma) for c in closest}
    assert set(closest) - {c for c in found if (c.alpha, c.beta, c.gamma) in keep} <= set(found[:4])
    spread = grid.select_candidates(found, 6, "spread")
    alphas = [c.alpha for c in spread]
    assert len(spread) == 6 and min(alphas) == 1.0 and max(alphas) >= 1.3
    assert grid.select_candidates(found, 0) == sorted(
        found, key=lambda c: (c.alpha, c.beta, c.gamma)
    )
    with pytest.raises(ValueError, match="order"):
        grid.select_candidates(found, 3, "random")
    with pytest.raises(ValueError, match="max_candidates"):
        grid.select_candidates(found, -1)


def test_twins_build_the_same_network_and_are_trained_once():
    found = grid.enumerate_candidates(VALUES, tolerance=0.1, extra=[(1.2, 1.1, 1.15)])
    unique, twins = grid.unique_networks(found, 48, keep=[(1.2, 1.1, 1.15)])
    assert 0 < len(unique) < len(found)
    assert sum(len(v) for v in twins.values()) == len(found) - len(unique)
    # Repeats round up: on B0 every alpha in (1, 1.25] gives the same depth,
    # so (1.25, 1.1, 1.15) is the paper's network; the paper's point is kept.
    assert "a1.25-b1.10-g1.15" in twins["a1.20-b1.10-g1.15"]
    assert (1.2, 1.1, 1.15) in {(c.alpha, c.beta, c.gamma) for c in unique}
    kwargs = dict(weights=None, input_shape=(55, 55, 3), classes=10)
    paper = keras_effnet.EfficientNet(phi=1, alpha=1.2, beta=1.1, gamma=1.15, **kwargs)
    twin = keras_effnet.EfficientNet(phi=1, alpha=1.25, beta=1.1, gamma=1.15, **kwargs)
    other = keras_effnet.EfficientNet(phi=1, alpha=1.3, beta=1.1, gamma=1.15, **kwargs)
    assert [w.shape for w in twin.weights] == [w.shape for w in paper.weights]
    assert other.count_params() != paper.count_params()  # alpha 1.3: one block more
    config = grid.GridConfig(base_resolution=48, max_candidates=0)
    trained = {grid.candidate_label(c) for c in config.candidates()}
    assert trained.isdisjoint(v for dropped in config.twins().values() for v in dropped)


def test_chosen_expression_round_trips_into_efficientnet():
    chosen = next(
        c
        for c in grid.enumerate_candidates(VALUES, tolerance=0.1)
        if (c.alpha, c.beta, c.gamma) == (1.25, 1.1, 1.15)
    )
    expression = grid.coefficients_expression(chosen.alpha, chosen.beta, chosen.gamma)
    assert expression == "keras_effnet.EfficientNet(phi=1, alpha=1.25, beta=1.1, gamma=1.15)"
    numbers = dict(re.findall(r"(\w+)=([0-9.]+)", expression))
    assert (float(numbers["alpha"]), float(numbers["beta"]), float(numbers["gamma"])) == (
        chosen.alpha,
        chosen.beta,
        chosen.gamma,
    )
    model = eval(expression, {"keras_effnet": keras_effnet})  # pylint: disable=eval-used
    direct = keras_effnet.EfficientNet(
        phi=1, alpha=chosen.alpha, beta=chosen.beta, gamma=chosen.gamma
    )
    assert model.count_params() == direct.count_params()
    assert model.input_shape == direct.input_shape == (None, 258, 258, 3)  # round(224 * 1.15)
    assert len(model.layers) == len(direct.layers)


def _row(cell_id, cell, accuracy, images_per_s):
    spec = cell["model"]
    return {
        "cell_id": cell_id,
        "model": spec["label"],
        "family": "compound",
        "phi": spec["phi"],
        "alpha": spec["alpha"],
        "beta": spec["beta"],
        "gamma": spec["gamma"],
        "resolution": cell["resolution"],
        "dataset": cell["dataset"],
        "flops": 1e6 * (1 + spec["phi"]) * spec["alpha"],
        "params": 1000,
        "accuracy": accuracy,
        "train_steps": 10,
        "batch_size": cell["batch_size"],
        "epochs": cell["epochs"],
        "budget_seconds": 0.0,
        "train_images_per_s": images_per_s,
        "train_ms_per_image": 1000.0 / images_per_s,
        "seed": cell["seed"],
    }


def _fake_runner(calls):
    """Accuracy grows with gamma, speed falls with alpha: rankings are predictable."""

    def run(cell_id, cell, on_phase=None):
        calls.append(cell_id)
        m = cell["model"]
        accuracy = 0.5 if m["phi"] == 0 else 0.5 + m["gamma"] - 1.0
        speed = 100.0 / m["alpha"] ** 4
        return {"status": "ok", "row": _row(cell_id, cell, accuracy, speed), "cell": cell}

    return run


GRID = dict(
    tolerance=0.05, max_candidates=4, order="spread", include_paper=False, interleaved=False
)


def test_rank_rows():
    rows = [
        {
            "alpha": a,
            "beta": 1.0,
            "gamma": 1.0,
            "accuracy": acc,
            "train_steps": 10,
            "batch_size": 10,
            "train_images_per_s": ips,
            "flops": 2e6,
            "train_ms_per_image": 1e3 / ips,
        }
        for a, acc, ips in ((1.1, 0.9, 10.0), (1.2, 0.8, 100.0), (1.3, 0.9, 20.0))
    ]
    ranked = grid.rank_rows(rows, baseline={"flops": 1e6, "train_ms_per_image": 50.0})
    assert [r["alpha"] for r in ranked] == [1.3, 1.1, 1.2]  # Tie on accuracy: cheaper first.
    assert [r["rank_efficiency"] for r in ranked] == [2, 3, 1]
    assert ranked[0]["train_cost_s"] == pytest.approx(5.0)
    assert ranked[0]["accuracy_per_train_second"] == pytest.approx(0.18)
    assert ranked[0]["flops_ratio"] == 2.0 and ranked[0]["time_ratio"] == pytest.approx(1.0)
    assert "rank_accuracy" not in rows[0]  # Inputs are not mutated.


@pytest.fixture(scope="module")
def fake_search(tmp_path_factory):
    calls = []
    config = grid.GridConfig(output_dir=str(tmp_path_factory.mktemp("grid")), **GRID)
    return config, grid.run_grid_search(config, cell_runner=_fake_runner(calls)), calls


def test_grid_search_tables_plot_and_choice(fake_search):
    config, result, calls = fake_search
    assert len(calls) == 5 and calls[0].startswith("baseline@32px-")
    candidates = config.candidates()
    assert len(result["rows"]) == 4
    assert all(abs(c.flops_factor - 2.0) <= 0.05 for c in candidates)
    best = max(candidates, key=lambda c: (c.gamma, -c.alpha))
    assert (result["chosen"]["alpha"], result["chosen"]["gamma"]) == (best.alpha, best.gamma)
    assert result["chosen_expression"] == grid.coefficients_expression(
        best.alpha, best.beta, best.gamma
    )
    for row in result["rows"]:  # Each candidate trains at round(32 * gamma).
        assert row["resolution"] == round(32 * row["gamma"])
        assert row["flops_ratio"] == pytest.approx(row["flops"] / result["baseline"]["flops"])
    names = [name for name, _ in results.columns((), grid.GRID_COLUMNS)]
    with open(result["csv"]) as f:
        table = list(csv.reader(f))
    assert table[0] == names and len(table) == 6 and table[1][1] == "baseline"
    with open(result["json"]) as f:
        assert json.load(f)["metadata"]["chosen_expression"] == result["chosen_expression"]
    with open(result["figure"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_grid_search_rerun_skips_finished_cells(fake_search):
    config, result, _ = fake_search
    calls = []
    again = grid.run_grid_search(config, cell_runner=_fake_runner(calls))
    assert calls == [] and len(again["skipped"]) == 5
    assert again["chosen_expression"] == result["chosen_expression"]
    wider = grid.GridConfig(**{**GRID, "output_dir": config.output_dir, "max_candidates": 6})
    old = {key for key, _ in config.jobs()}
    new = [key for key, _ in wider.jobs() if key not in old]
    grid.run_grid_search(wider, cell_runner=_fake_runner(calls))
    assert calls == new and 0 < len(new) < len(wider.jobs())  # Only the new candidates.


@pytest.mark.timeout(300)
def test_grid_script_prints_a_buildable_choice(fake_search):
    config, result, _ = fake_search
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "scripts", "grid_search.py"),
            "--tolerance=0.05",
            "--max_candidates=4",
            "--order=spread",
            "--noinclude_paper",
            "--nointerleaved",
            f"--output_dir={config.output_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0 ran, 5 skipped, 0 failed" in proc.stdout
    line = next(l for l in proc.stdout.splitlines() if l.startswith("chosen (accuracy): "))
    assert line.split(": ", 1)[1] == result["chosen_expression"]


def test_grid_config_errors():
    with pytest.raises(ValueError, match="rank_by"):
        grid.GridConfig(rank_by="speed")
    with pytest.raises(ValueError, match="base_resolution"):
        grid.GridConfig(base_resolution=16)
    with pytest.raises(ValueError, match="tolerance"):
        grid.GridConfig(tolerance=-0.1)


def test_grid_cells_build_the_phi1_model_at_its_own_resolution():
    from keras_effnet.study import specs

    config = grid.GridConfig(max_candidates=1, include_paper=False)
    (_, base), (_, cell) = config.jobs()
    assert base["model"]["phi"] == 0.0 and base["resolution"] == 32
    spec = cell["model"]
    built = specs.build(spec, cell["resolution"], classes=10)
    direct = keras_effnet.EfficientNet(
        phi=1,
        alpha=spec["alpha"],
        beta=spec["beta"],
        gamma=spec["gamma"],
        base_resolution=32,
        classes=10,
    )
    assert (
        built.input_shape == direct.input_shape == (None, cell["resolution"], cell["resolution"], 3)
    )
    assert keras_effnet.model_profile(built) == keras_effnet.model_profile(direct)


def test_seeds_rank_by_the_mean_and_pair_the_gaps(tmp_path):
    # Seed noise on top of the fake runner's accuracies: the second candidate
    # is behind on every seed, the third only on average.
    noise = {0: 0.0, 1: 0.02, 2: -0.02}
    calls = []
    inner = _fake_runner(calls)

    def noisy(cell_id, cell, on_phase=None):
        record = inner(cell_id, cell, on_phase)
        row = record["row"]
        row["accuracy"] += noise[cell["seed"]]
        if row["model"] == config.jobs()[3][1]["model"]["label"] and cell["seed"] == 2:
            row["accuracy"] += 0.5  # A lucky seed (above the best one), not enough on average.
        return record

    config = grid.GridConfig(output_dir=str(tmp_path), seeds=3, **GRID)
    result = grid.run_grid_search(config, cell_runner=noisy)
    assert len(calls) == 15 and len(result["cells"]) == 15 and len(result["rows"]) == 4
    assert [c["seed"] for _, c in config.jobs()] == [0] * 5 + [1] * 5 + [2] * 5
    best, *others = result["rows"]
    assert best["seeds"] == 3 and best["gap_to_best"] == 0.0 and not best["behind_best"]
    for row in others:
        assert row["gap_min"] <= row["gap_to_best"] <= row["gap_max"]
        seeds = [r for r in result["cells"] if r["model"] == row["model"]]
        assert row["accuracy"] == pytest.approx(sum(r["accuracy"] for r in seeds) / 3)
        assert row["accuracy_spread"] == pytest.approx(
            (max(r["accuracy"] for r in seeds) - min(r["accuracy"] for r in seeds)) / 2
        )
    lucky = next(r for r in others if r["model"] == config.jobs()[3][1]["model"]["label"])
    assert lucky["gap_min"] < 0 and not lucky["behind_best"]
    assert any(r["behind_best"] for r in others)
