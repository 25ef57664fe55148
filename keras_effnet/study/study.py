"""The scaling study: FLOPs vs measured time vs accuracy across model scales.

    from keras_effnet.study import StudyConfig, run_scaling_study
    summary = run_scaling_study(StudyConfig(models=("b0", "lite0", "resnet50"),
                                            resolution=64, epochs=2, output_dir="docs"))

Writes to `output_dir`: study_results.csv / .json (one row per cell: model x
seed; columns documented in `results.columns`), study_summary.csv / .json / .md
(one row per model, mean and spread over seeds: `results.summary_columns`),
study_cells.json (the resumable store), the three study_*.png figures (from
the summary, Pareto fronts marked) and logs/ (one worker log per cell).
"""

import dataclasses
import os

from keras_effnet import io
from keras_effnet.config_flags import option
from keras_effnet.study import plots, results, runner, specs
from keras_effnet.study.runner import MeasureSettings

PREFIX = "study"


def _option(default, help, **kwargs):  # noqa: A002
    # The flags of `keras-effnet study` (keras_effnet.config_flags).
    return option(default, help, section="study", **kwargs)


def _floats(name, values):
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a comma-separated list of numbers. Received: {name}={values!r}"
        ) from None


@dataclasses.dataclass(frozen=True)
class StudyConfig(MeasureSettings):
    """What the scaling study measures (plus `MeasureSettings`).

    Attributes:
        models: named models: "b0".."b7", "lite0".."lite4", "v2b0".."v2l",
            and the keras.applications references "resnet50",
            "mobilenetv3large", "mobilenetv3small".
        phis: compound coefficients of extra `keras_effnet.EfficientNet`
            models built with `alpha`, `beta`, `gamma`, `base_resolution`.
        alpha, beta, gamma: compound-scaling bases for `phis`.
        base_resolution: resolution of phi=0 for `phis`.
        lite: build the `phis` models with the Lite switches.
        resolution: > 0: one common input side for every model; 0: each
            model's native resolution times `resolution_scale`.
        resolution_scale: factor on native resolutions when `resolution` is 0.
        plots: write the PNG figures.
        measure: False writes the tables and figures of the finished cells
            and measures nothing (a report of a study still in progress).
    """

    models: tuple = _option(
        ("b0", "b1", "b2", "lite0", "resnet50"),
        "Named models: b0..b7, lite0..lite4, v2b0..v2b3, v2s, v2m, v2l; keras.applications "
        "references: resnet50, mobilenetv3large, mobilenetv3small.",
    )
    phis: tuple = _option((), "Extra keras_effnet.EfficientNet(phi, ...) models.")
    alpha: float = _option(1.2, "Depth base for --phis.")
    beta: float = _option(1.1, "Width base for --phis.")
    gamma: float = _option(1.15, "Resolution base for --phis.")
    base_resolution: int = _option(224, "phi=0 resolution for --phis.")
    lite: bool = _option(False, "Build the --phis models as Lite.")
    resolution: int = _option(64, "Common input side; 0 = native x --resolution_scale.")
    resolution_scale: float = _option(1.0, "Factor on native resolutions when --resolution=0.")
    plots: bool = _option(True, "Write the PNG figures.")
    measure: bool = _option(
        True, "Measure unfinished cells (--nomeasure: tables and figures of finished ones)."
    )

    def __post_init__(self):
        super().__post_init__()
        # A trailing comma (`--models=b0,`) leaves an empty name: dropped.
        object.__setattr__(self, "models", tuple(m for m in self.models if m))
        object.__setattr__(self, "phis", _floats("phis", self.phis))
        if not self.models and not self.phis:
            raise ValueError(
                "Nothing to measure: give `models` and/or `phis`. "
                f"Received: models={self.models!r}, phis={self.phis!r}"
            )
        # Fail fast on bad names, coefficients and resolutions.
        for spec in self.model_specs():
            specs.resolve_resolution(spec, self.resolution, self.resolution_scale)

    def model_specs(self):
        """The specs to measure, named models first, then the `phis` models."""
        out = [specs.parse_model_name(name) for name in self.models]
        out += [
            specs.compound_spec(
                phi, self.alpha, self.beta, self.gamma, self.base_resolution, self.lite
            )
            for phi in self.phis
        ]
        labels = [specs.label(s) for s in out]
        duplicates = sorted({x for x in labels if labels.count(x) > 1})
        if duplicates:
            raise ValueError(
                f"Models listed twice: {duplicates}. Received: models={self.models!r}, "
                f"phis={self.phis!r}"
            )
        return out

    def jobs(self):
        """[(cell_id, cell)] in measurement order: every model at one seed, then the next seed."""
        out = []
        for settings in self.per_seed():
            out += [
                runner.make_cell(
                    settings,
                    spec,
                    specs.resolve_resolution(spec, self.resolution, self.resolution_scale),
                )
                for spec in self.model_specs()
            ]
        return out


def output_paths(output_dir):
    """Paths of everything the study writes (figures keyed by plot name)."""
    return {
        "store": os.path.join(output_dir, f"{PREFIX}_cells.json"),
        "table": os.path.join(output_dir, f"{PREFIX}_results"),
        "summary": os.path.join(output_dir, f"{PREFIX}_summary"),
        "figures": {
            name: os.path.join(output_dir, f"{PREFIX}_{name}.png") for name in plots.STUDY_FIGURES
        },
    }


def run_scaling_study(config, cell_runner=None):
    """Measures every model of `config`, skipping cells already in the store.

    Args:
        config: a `StudyConfig`.
        cell_runner: callable (cell_id, cell, on_phase) -> record; default: a
            fresh worker process per cell (`config.isolate`).

    Returns:
        dict with "rows" (finished rows in config order), "summary" (one per
        model), "ran", "skipped", "failed", "missing" (cell ids), "csv",
        "json", "summary_csv" and "figures" (paths).
    """
    paths = output_paths(config.output_dir)
    io.makedirs(config.output_dir, "output_dir")
    store = results.ResultStore(paths["store"])
    jobs = config.jobs()
    if config.measure:
        summary = runner.run_cells(
            jobs, store, cell_runner or runner.default_runner(config), desc="scaling study"
        )
    else:
        summary = {"ran": [], "skipped": [k for k, _ in jobs if store.finished(k)], "failed": []}
    summary["missing"] = [k for k, _ in jobs if not store.finished(k)]
    rows = store.rows([key for key, _ in jobs])
    if config.measure and not summary["missing"]:
        rows = runner.run_interleaved(config, jobs, rows, store)
    metadata = {
        "config": dataclasses.asdict(config),
        "machine": runner.machine_info(),
        "failed": summary["failed"],
        "missing": summary["missing"],
    }
    csv_path, json_path = results.write_tables(
        rows, paths["table"], results.columns(config.tflite_modes), metadata
    )
    per_model = results.aggregate(rows)
    summary_csv, _ = results.write_tables(
        per_model, paths["summary"], results.summary_columns(config.tflite_modes), metadata
    )
    io.write_text_atomic(
        paths["summary"] + ".md", results.summary_markdown(per_model, config.tflite_modes)
    )
    figures = {}
    if config.plots and per_model:
        figures = plots.study_figures(per_model, paths["figures"], config.tflite_modes)
    return {
        "rows": rows,
        "summary": per_model,
        **summary,
        "csv": csv_path,
        "json": json_path,
        "summary_csv": summary_csv,
        "figures": figures,
    }


def format_summary(rows, modes=()):
    """A plain-text table of the key figures, one line per model."""
    header = (
        f"{'model':<20}{'res':>5}{'params':>9}{'MFLOPs':>9}{'train img/s':>12}"
        f"{'keras ms':>10}"
        + "".join(f"{m + ' ms':>10}" for m in modes)
        + f"{'acc':>7}"
        + "".join(f"{m + ' acc':>10}" for m in modes)
    )
    lines = [header]
    for row in rows:
        line = (
            f"{row['model']:<20}{row['resolution']:>5}{row['params'] / 1e6:>8.2f}M"
            f"{row['flops'] / 1e6:>9.1f}{row['train_images_per_s']:>12.1f}"
            f"{row['keras_latency_ms']:>10.2f}"
        )
        line += "".join(_fmt(row.get(f"tflite_{m}_latency_ms"), 10, ".2f") for m in modes)
        line += _fmt(row.get("accuracy"), 7, ".3f")
        if row.get("seeds", 1) > 1:
            line += f" ±{row.get('accuracy_spread', 0.0):.3f}"
        line += "".join(_fmt(row.get(f"tflite_{m}_accuracy"), 10, ".3f") for m in modes)
        lines.append(line)
    return "\n".join(lines)


def _fmt(value, width, spec):
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"
