"""Evaluation: image metrics (``lyra.eval.metrics``) and benchmarks on held-out worlds."""
