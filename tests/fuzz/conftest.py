"""Fuzzing every reader and option parser (issue 23): malformed inputs give one line on stderr, a non-zero exit,
no partial or stray file, and bounded memory.

Examples are few and derandomized (the same ones on every run) so that the suite stays quick on a loaded 2-core CI
machine; ``LYRA_FUZZ_EXAMPLES`` raises the count for a longer local run. The whole suite runs in-process under an
address-space limit (RLIMIT_AS: the memory in use when it starts + 2 GiB), so a reader that tried to allocate what a
hostile header claims fails the test with a MemoryError instead of exhausting the machine.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hardening"))

settings.register_profile("lyra-fuzz", max_examples=int(os.environ.get("LYRA_FUZZ_EXAMPLES", "30")),
                          deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("lyra-fuzz")

HEADROOM = 2 << 30


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(autouse=True)
def bounded_memory():
    """Cap this process's address space while each fuzz test runs (restored after each: a package-scoped cap
    outlived the package under pytest and starved later tests, e.g. node's WebAssembly in the export tests)."""
    if not Path("/proc/self/status").exists():
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_bytes() + HEADROOM
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
