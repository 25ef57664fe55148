"""Interleaved timing of all the study's models in one process.

Per-cell timings are taken minutes apart; on a shared machine (here: 2 cores,
several engineers) the background load changes in between, and a ratio of two
such timings mixes model cost with load. This pass builds every model of the
study in one worker, loads every saved .tflite, and times them in alternating
rounds (A, B, C, A, B, C, ...; `keras_effnet.bench.model.time_models`),
reporting medians: a load change then hits all models alike.

Measured per model: Keras inference latency at batch 1, training throughput
(a compiled `train_on_batch` on one fixed random batch, RMSProp, no input
pipeline; weights are random, which does not change the cost), and LiteRT
latency at batch 1 per mode. Every round is stored; the table reports the
best round ("min", default: the cost when the model had the CPU, as timeit
recommends under interference) or the median. The per-cell figures are kept
as `solo_*`.

Worker: ``python -m keras_effnet.study.timing JOB.json OUT.json``.
"""

import hashlib
import json
import os
import statistics

from keras_effnet.study import results, specs


def _emit(phase):
    print(json.dumps({"phase": phase}), flush=True)


def make_job(jobs, rows, settings, artifacts_dir):
    """(store key, job) of the interleaved pass over finished `rows`.

    The key hashes the cell ids and the timing settings, so adding a model or
    changing a setting re-runs the pass, and a rerun of the same study skips it.
    """
    cells = dict(jobs)
    models = []
    for row in rows:
        cell = cells[row["cell_id"]]
        files = {mode: row.get(f"tflite_{mode}_file") for mode in cell["tflite_modes"]}
        # A file from an earlier session may be gone (the store travels, the
        # .tflite files do not): that model keeps its per-cell LiteRT latency.
        files = {
            mode: f
            for mode, f in files.items()
            if f and os.path.exists(os.path.join(artifacts_dir, f))
        }
        models.append(
            {
                "id": row["cell_id"],
                "spec": cell["model"],
                "resolution": cell["resolution"],
                "stem_strides": row.get("stem_strides") or 2,
                "classes": row["classes"],
                "tflite": {m: f for m, f in files.items() if f},
            }
        )
    job = {
        "models": models,
        "artifacts_dir": artifacts_dir,
        "batch_size": settings.batch_size,
        "jit_compile": settings.jit_compile,
        "threads": settings.threads,
        "latency_runs": settings.latency_runs,
        "seed": settings.seed,
        "timing": {
            "iterations": settings.timing_iterations,
            "repeats": settings.interleaved_repeats,
            "warmup": settings.timing_warmup,
        },
    }
    identity = dict(job, artifacts_dir=None)
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode("utf8")).hexdigest()[:10]
    return f"interleaved-timing-{digest}", job


def measure_interleaved(job):
    """Times every model of `job` in alternating rounds (`keras_effnet.bench.model.time_models`).

    Returns:
        {cell_id: {column: [per-round milliseconds]}} for keras_latency_ms,
        train_ms_per_image and tflite_<mode>_latency_ms.
    """
    # Local: the study's parent process imports this module for `make_job`
    # and `apply` and stays free of TensorFlow; only the worker loads it.
    import keras

    from keras_effnet.bench import model as model_bench

    keras.utils.set_random_seed(job["seed"])
    models = {}
    for m in job["models"]:
        _emit(f"build {m['id'].split('@')[0]}")
        models[m["id"]] = specs.build(
            m["spec"], m["resolution"], m["classes"], stem_strides=m.get("stem_strides", 2)
        )
    tflite = {
        m["id"]: {mode: os.path.join(job["artifacts_dir"], f) for mode, f in m["tflite"].items()}
        for m in job["models"]
    }
    return model_bench.time_models(
        models,
        tflite,
        batch_size=job["batch_size"],
        timing=job["timing"],
        jit_compile=job["jit_compile"],
        threads=job["threads"],
        latency_runs=job["latency_runs"],
        on_phase=_emit,
    )


STATISTICS = ("min", "median")


def apply(rows, record, statistic="min"):
    """Rows with the interleaved figures; the per-cell ones kept as solo_*.

    Args:
        rows: study rows.
        record: the stored result of the interleaved pass (with per-round ms).
        statistic: "min" (best round: the cost when the model had the CPU;
            what timeit recommends under interference) or "median" (typical
            cost under the load of the run).
    """
    if statistic not in STATISTICS:
        raise ValueError(
            f"`timing_statistic` must be one of {STATISTICS}. "
            f"Received: timing_statistic={statistic!r}"
        )
    if not record or record.get("status") != "ok":
        return rows
    reduce = min if statistic == "min" else statistics.median
    # Costs do not depend on the seed: a row whose cell was not timed takes the
    # rounds of its model's timed cell (ids are "<model>@...", labels unique).
    by_model = {cell_id.split("@")[0]: r for cell_id, r in record["rounds"].items()}
    out = []
    for row in rows:
        row = dict(row)
        rounds = record["rounds"].get(row["cell_id"]) or by_model.get(row.get("model"))
        if rounds:
            for column, values in rounds.items():
                if column.endswith("latency_ms"):
                    row["solo_" + column] = row.get(column)
                row[column] = reduce(values)
            if "train_ms_per_image" in rounds:
                row["train_images_per_s"] = 1000.0 / row["train_ms_per_image"]
            count = len(next(iter(rounds.values())))
            row["timing_method"] = (
                f"interleaved ({len(record['rounds'])} models, {statistic} of {count} rounds)"
            )
        out.append(row)
    return out


def main(argv=None):
    """Worker entry: argv = JOB.json OUT.json."""
    return results.run_worker(
        "keras_effnet.study.timing", lambda job: {"rounds": measure_interleaved(job)}, argv
    )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results.exit_worker(main())
