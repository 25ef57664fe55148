"""Quantization-aware training and pruning (tensorflow-model-optimization).

tfmot works on tf_keras (Keras 2) graphs only, so this sub-package holds the
whole path from our Keras 3 models and back: `translate` (Keras 3 -> flat
tf_keras graph with the same names and weights), `qat_configs` (which
quantizer goes where), `qat_graph` (annotate, quantize, convert), `finetune` (short fine-tuning under a strategy), `qat`
(the QAT export) and `prune` (magnitude pruning). See docs/qat.md
"Quantization-aware training and pruning".
"""
