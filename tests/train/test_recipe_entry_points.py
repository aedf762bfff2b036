"""Every recipe runs as ``python -m lyra.train.recipes.<name>`` (what the device scripts call).

Regression: ``lyra.train.recipes.tokenizer`` lost its ``if __name__ == "__main__"`` when it moved out of
``lyra.tokenizer``, so ``python -m`` imported it and exited 0 having done nothing: a GPU chunk of
``scripts/tokenizer_gpu.sh`` "succeeded" with an empty log and no export. The recipes' own tests call ``main()``
directly and could not see it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
RECIPES = ("depth", "student", "teacher", "tokenizer")


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", module, *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_runs_as_a_module(name):
    module = f"lyra.train.recipes.{name}"
    res = _run(module, "--help")
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"usage: python -m {module}" in res.stdout


def test_tokenizer_module_rejects_bad_options():
    # a module that is only imported exits 0 whatever it is given; the entry point parses and refuses
    res = _run("lyra.train.recipes.tokenizer", "--out", "unused", "--no-such-option")
    assert res.returncode == 2
    assert "unrecognized arguments: --no-such-option" in res.stderr
