"""The old home of the video pipeline (``generate_dynamic`` and its parts), now one pipeline with the image one in
:mod:`lyra.pipeline` (a static scene is the one-time case of a dynamic one).

This module *is* :mod:`lyra.pipeline` under its old name: ``import lyra.pipeline_dynamic`` gives that same module
object, so every name and every seam (e.g. a test's ``monkeypatch.setattr(lyra.pipeline_dynamic, ...)``) reaches
the one pipeline.
"""

import sys

import lyra.pipeline

sys.modules[__name__] = lyra.pipeline
