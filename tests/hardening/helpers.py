"""Shared helpers of the hardening tests: small scenes and files, running the CLI in-process or in a
subprocess under resource limits, and listing leftovers."""

from __future__ import annotations

import contextlib
import io
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch

from lyra.gaussians import Gaussians

SRC = str(Path(__file__).resolve().parents[2] / "src")


def make_scene(n: int = 200, seed: int = 0) -> Gaussians:
    """A small random scene in front of the origin camera (z in [2, 4])."""
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g) * torch.tensor([2.0, 1.2, 2.0]) - torch.tensor([1.0, 0.6, -2.0])
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    scales = 0.02 + 0.05 * torch.rand(n, 3, generator=g)
    return Gaussians(means, quats, scales, 0.2 + 0.79 * torch.rand(n, generator=g), torch.rand(n, 3, generator=g))


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``lyra ARGV`` in this process: (exit status, stdout, stderr). argparse exits are caught."""
    from lyra.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return int(code), out.getvalue(), err.getvalue()


def run_limited(code: str, *, mem_mb: int | None = None, fsize: int | None = None, cwd: str | os.PathLike = ".",
                timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run Python ``code`` in a subprocess (this worktree's sources) under an address-space limit of ``mem_mb`` MiB
    and/or a file-size limit of ``fsize`` bytes."""

    def limit() -> None:
        if mem_mb is not None:
            resource.setrlimit(resource.RLIMIT_AS, (mem_mb << 20, mem_mb << 20))
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit, check=False)


def cli_code(argv: list[str]) -> str:
    """Python source running ``lyra ARGV`` and exiting with its status."""
    return f"import sys; from lyra.cli import main; sys.exit(main({argv!r}))"


def leftovers(folder: str | os.PathLike) -> list[str]:
    """Hidden temporaries (``.*tmp*``, ``.*.old``) anywhere under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob(".*")
                  if ".tmp" in p.name or p.name.endswith(".old"))


def one_line_error(stderr: str) -> bool:
    """Exactly one non-empty line on stderr, an error line, no traceback."""
    lines = [ln for ln in stderr.splitlines() if ln.strip() and "rendering:" not in ln]
    return len(lines) == 1 and "error" in lines[0] and "Traceback" not in stderr
