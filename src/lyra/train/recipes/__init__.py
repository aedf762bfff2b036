"""The training recipes, one module per model, each runnable as ``python -m lyra.train.recipes.<model>`` and
through ``lyra train <model>``:

* :mod:`~lyra.train.recipes.student` — the 3DGS decoder by self-distillation on SDG shards;
* :mod:`~lyra.train.recipes.teacher` — the teacher's video denoiser on procedural worlds;
* :mod:`~lyra.train.recipes.depth` — the tiny monocular depth net on procedural worlds;
* :mod:`~lyra.train.recipes.tokenizer` — the video tokenizer (its data: :mod:`~lyra.train.recipes.tokenizer_data`).

Each shares the run preamble and options of :mod:`lyra.train.runtime` and the loop of :class:`lyra.train.Trainer`.
"""
