"""Measurement: every benchmark of the package and the timing primitives they share.

    timing.py          the one interleaved timing loop; TrainStep, InferenceStep,
                       LiteRTStep; interleaved_throughput, interleaved_latency
    model.py           our B0 vs keras.applications; the study's interleaved pass
    training.py        train_briefly (the one brief training: `loop.train`),
                       the two baselines, transfer runs; `run(BenchOptions)`, the
                       resumable recipe-vs-baselines comparison (scripts/bench_training.py)
    progressive.py     progressive learning off vs on: time to an accuracy, plot, and
                       its resumable benchmark (`bench_training.py --progressive`)
    input_pipeline.py  end-to-end vs bare training step; precision and XLA switches
    export.py          accuracy, size and LiteRT latency of every export mode
    ptq.py             post-training int8 of recipe-trained models
    qat.py             float vs PTQ int8 vs QAT int8
    gpu*.py            the GPU check (JAX backend, no TensorFlow): correctness on the
                       device, our B0 vs keras.applications B0, timm's B0 in PyTorch,
                       the family's throughput vs FLOPs (scripts/bench_gpu.py)

Imports point one way: scripts and the study use this package; it uses
`keras_effnet.training`, `keras_effnet.export` and the model core, and they
never import it (docs/design.md, "Package map").
"""
