"""The sections of the GPU benchmark (`gpu.py`), each a function of the run's state.

Each section runs its items through `run.attempt` (budget, failures, files)
and records through `run.result`. Priority order is `SECTIONS`.
"""

import functools
import math

import keras
import numpy as np

import keras_effnet
from keras_effnet.bench import gpu_jax, gpu_results
from keras_effnet.bench.gpu_results import Correctness, Event, Exponent, FamilyRow, Ratio
from keras_effnet.core import builder, variants

SECTIONS = ("correctness", "b0_vs_keras_applications", "timm_anchor", "family", "b0_small_batch")
_FAMILY_PRECISION = "mixed_bfloat16"


def _pow2_batch(full, ratio, minimum):
    """`full` when ratio >= 1, else the power of two <= full * ratio (at least `minimum`)."""
    if ratio >= 1:
        return full
    return max(min(minimum, full), 2 ** int(math.floor(math.log2(max(1.0, full * ratio)))))


def _ours(name, resolution):
    return keras_effnet.get_model(
        name, input_shape=(resolution, resolution, 3), classifier_activation=None
    )


def _keras_applications(name, resolution):
    constructor = getattr(keras.applications, variants.get_variant(name).constructor_name)
    return constructor(
        weights=None, input_shape=(resolution, resolution, 3), classifier_activation=None
    )


def _correctness(run):
    c = run.config
    images = np.random.default_rng(0).uniform(
        0, 255, (c.correctness_batch,) + (c.correctness_resolution,) * 2 + (3,)
    )
    images = images.astype("float32")

    def check(name):
        ours = gpu_jax.build_on_host(lambda: _ours(name, c.correctness_resolution))
        references = {}
        if not variants.get_variant(name).lite:
            twin = gpu_jax.build_on_host(
                lambda: _keras_applications(name, c.correctness_resolution)
            )
            gpu_jax.randomize_batchnorm(twin)
            gpu_jax.copy_weights(twin, ours)
            references["keras.applications." + twin.name] = twin
        else:
            gpu_jax.randomize_batchnorm(ours)
        exact = gpu_jax.predict(ours, images, run.device, "highest", repeat=2)
        deterministic = bool(np.array_equal(exact[0], exact[1]))
        fast = gpu_jax.predict(ours, images, run.device, "default")[0]
        on_cpu = gpu_jax.predict(ours, images, gpu_jax.host(), "highest")[0]
        rows = [("same model on XLA:CPU", "highest", "highest", exact[0], on_cpu)]
        rows.append(("same model on XLA:CPU", "default", "highest", fast, on_cpu))
        for label, twin in references.items():
            ref_exact = gpu_jax.predict(twin, images, run.device, "highest")[0]
            ref_fast = gpu_jax.predict(twin, images, run.device, "default")[0]
            rows.append((label, "highest", "highest", exact[0], ref_exact))
            rows.append((label, "default", "default", fast, ref_fast))
        for reference, precision, ref_precision, mine, theirs in rows:
            row = Correctness(
                model=ours.name,
                reference=reference,
                precision=precision,
                reference_precision=ref_precision,
                resolution=c.correctness_resolution,
                batch_size=c.correctness_batch,
                max_abs_diff=float(np.max(np.abs(mine - theirs))),
                max_abs_output=float(np.max(np.abs(theirs))),
                deterministic=deterministic,
            )
            run.result.correctness.append(row)
            run.result.record(
                "correctness",
                ours.name,
                f"max|diff| vs {reference} ({precision}/{ref_precision})",
                row.max_abs_diff,
                "",
                f"(max|output| {row.max_abs_output:.3g}, deterministic {deterministic})",
            )

    for name in ("b0", "lite0", "v2b0"):
        run.attempt(
            "correctness", name, run.last_duration("correctness"), functools.partial(check, name)
        )


def _b0_pair(run, section, precision, mode, batch):
    keys = {
        impl: ("efficientnetb0", impl, mode, precision, run.config.resolution, batch)
        for impl in ("keras_effnet", "keras.applications")
    }
    if all(key in run.measured for key in keys.values()):  # the tiny run's small batch
        rows = {impl: run.measured[key] for impl, key in keys.items()}
    else:
        rows = run.time_jax(section, _b0_models(run, precision), mode, precision, batch)
    ratio = Ratio(
        section=section,
        mode=mode,
        precision=precision,
        batch_size=batch,
        ours="keras_effnet",
        reference="keras.applications",
        ratio=rows["keras_effnet"].images_per_s / rows["keras.applications"].images_per_s,
    )
    run.result.ratios.append(ratio)
    run.result.record(
        section,
        "b0",
        f"ratio ours/keras.applications {mode} {precision} batch {batch}",
        ratio.ratio,
        "",
    )


def _b0_models(run, precision):
    return {
        "keras_effnet": gpu_jax.build_on_host(
            lambda: _ours("b0", run.config.resolution), precision
        ),
        "keras.applications": gpu_jax.build_on_host(
            lambda: _keras_applications("b0", run.config.resolution), precision
        ),
    }


def _b0_vs_keras_applications(run):
    c = run.config
    for precision in c.precisions:
        for mode, batch in (("train", c.train_batch), ("inference", c.inference_batch)):
            estimate = run.last_duration("b0_vs_keras_applications")
            fn = functools.partial(
                _b0_pair, run, "b0_vs_keras_applications", precision, mode, batch
            )
            run.attempt("b0_vs_keras_applications", f"{precision} {mode}", estimate, fn)


def _timm_anchor(run):
    from keras_effnet.bench.gpu_torch import timm_in_subprocess

    c = run.config
    batches = {"train": c.train_batch, "inference": c.inference_batch}
    groups = {"eager": [False]} | ({"torch.compile": [True]} if c.torch_compile else {})
    for group, (compiled,) in groups.items():
        jobs = [{"mode": m, "batch_size": b, "compiled": compiled} for m, b in batches.items()]
        estimate = 2 * c.torch_compile_estimate_s if compiled else run.last_duration("timm_anchor")

        def measure(jobs=jobs):
            rows = timm_in_subprocess(
                max(30.0, run.left()),
                jobs,
                model_name=c.timm_model,
                resolution=c.resolution,
                timing=run.timing(),
            )
            for job, row in zip(jobs, rows):
                if isinstance(row, str):
                    item = f"{job['mode']} {group}"
                    run.result.events.append(Event("timm_anchor", item, "failed", row[:300]))
                    print(f"[timm_anchor] FAILED {item}: {row}", flush=True)
                    continue
                run.add_throughput(row)
                _timm_ratio(run, row)

        run.attempt("timm_anchor", group, estimate, measure)


def _timm_ratio(run, timm):
    c = run.config
    key = ("efficientnetb0", "keras_effnet", timm.mode, _FAMILY_PRECISION, c.resolution)
    ours = run.measured.get(key + (timm.batch_size,))
    if ours is None:
        return
    ratio = Ratio(
        section="timm_anchor",
        mode=timm.mode,
        precision="bf16",
        batch_size=timm.batch_size,
        ours="keras_effnet (JAX)",
        reference=timm.implementation,
        ratio=ours.images_per_s / timm.images_per_s,
    )
    run.result.ratios.append(ratio)
    run.result.record(
        "timm_anchor", "b0", f"ratio ours/{timm.implementation} {timm.mode}", ratio.ratio, ""
    )


def _blocks(name):
    v = variants.get_variant(name)
    return len(builder.build_plan(v.width, v.depth, lite=v.lite, baseline=v.baseline).blocks)


def _family_model(run, name, reference_flops):
    c = run.config
    native = variants.get_variant(name).resolution
    resolution = max(32, round(native * c.family_resolution_scale))
    model = gpu_jax.build_on_host(lambda: _ours(name, resolution), _FAMILY_PRECISION)
    profile = keras_effnet.model_profile(model)
    ratio = reference_flops / profile["flops"]
    batches = {
        "train": _pow2_batch(c.train_batch, ratio, c.family_min_batch),
        "inference": _pow2_batch(c.inference_batch, ratio, c.family_min_batch),
    }
    rows = {"train": None, "inference": None}
    for mode, batch in batches.items():
        if mode not in c.family_modes:
            continue
        key = (model.name, "keras_effnet", mode, _FAMILY_PRECISION, resolution, batch)
        if key in run.measured:  # B0 at 224 bf16 was timed by b0_vs_keras_applications
            rows[mode] = run.measured[key]
        else:
            rows[mode] = run.time_jax(
                "family", {"keras_effnet": model}, mode, _FAMILY_PRECISION, batch, family=True
            )["keras_effnet"]
    row = FamilyRow(
        model=name,
        resolution=resolution,
        params=profile["params"],
        flops=profile["flops"],
        train_batch=batches["train"],
        train_images_per_s=rows["train"] and rows["train"].images_per_s,
        train_peak_bytes=rows["train"] and rows["train"].compiled_peak_bytes,
        inference_batch=batches["inference"],
        inference_images_per_s=rows["inference"] and rows["inference"].images_per_s,
        inference_peak_bytes=rows["inference"] and rows["inference"].compiled_peak_bytes,
        process_peak_bytes=gpu_jax.process_peak_bytes(run.device),
    )
    run.result.family.append(row)
    run.result.record("family", name, "params", row.params, "")
    run.result.record(
        "family", name, "GFLOPs per image", row.flops / 1e9, "GFLOP", f"at {resolution} px"
    )


def _family(run):
    c = run.config
    base = max(32, round(224 * c.family_resolution_scale))
    reference = gpu_jax.build_on_host(lambda: _ours("b0", base))
    reference_flops = keras_effnet.model_profile(reference)["flops"]
    per_block = None  # seconds per block of the last family model: the estimate of the next
    for name in c.family:
        if per_block is None:
            pair = sum(
                d
                for (s, i), d in run.durations.items()
                if s == "b0_vs_keras_applications" and i.startswith(_FAMILY_PRECISION)
            )
            per_block = pair / 2 / _blocks("b0") if pair else 0.0
        estimate = 1.3 * per_block * _blocks(name)
        run.attempt(
            "family", name, estimate, functools.partial(_family_model, run, name, reference_flops)
        )
        if any(f.model == name for f in run.result.family):
            # The largest seconds per block so far: bigger models compile slower per block.
            per_block = max(per_block, run.durations[("family", name)] / _blocks(name))
        keras.backend.clear_session()
    _exponents(run)


def _exponents(run):
    rows = run.result.family
    scopes = {
        "GPU, all family models measured": rows,
        "GPU, B0-B7": [r for r in rows if r.model.startswith("b")],
    }
    for scope, subset in scopes.items():
        for metric in ("train", "inference"):
            fps = [getattr(r, f"{metric}_images_per_s") for r in subset]
            k = gpu_results.power_law_exponent(
                [r.flops for r in subset], [1 / v if v else None for v in fps]
            )
            run.result.exponents.append(
                Exponent(
                    scope,
                    metric,
                    k,
                    tuple(f"{r.model}@{r.resolution}" for r in subset),
                    "time per image at the row's batch, mixed_bfloat16",
                )
            )
    run.result.exponents.extend(gpu_results.cpu_study_exponents(run.config.cpu_study_results))
    for e in run.result.exponents:
        run.result.record(
            "family", e.scope, f"k ({e.metric})", e.k, "", f"over {len(e.models)} models"
        )


def _b0_small_batch(run):
    c = run.config
    for mode, batch in (("train", c.train_batch), ("inference", c.inference_batch)):
        batch = max(1, batch // c.small_batch_divisor)
        estimate = run.durations.get(
            ("b0_vs_keras_applications", f"{_FAMILY_PRECISION} {mode}"), 0.0
        )
        fn = functools.partial(_b0_pair, run, "b0_small_batch", _FAMILY_PRECISION, mode, batch)
        run.attempt("b0_small_batch", mode, estimate, fn)


SECTION_FUNCTIONS = {
    "correctness": _correctness,
    "b0_vs_keras_applications": _b0_vs_keras_applications,
    "timm_anchor": _timm_anchor,
    "family": _family,
    "b0_small_batch": _b0_small_batch,
}
