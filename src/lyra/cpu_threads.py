"""CPU threads on a machine that others share: passive waiting, and as many threads as there are free cores.

Two things make torch's CPU work degrade badly when another process keeps a core busy:

* **Spin-waiting.** torch's intra-op pool is OpenMP (libgomp). By default an idle OpenMP thread spins for a
  while before it sleeps, so with more runnable threads than cores the waiting threads burn the time slices the
  working ones need (measured for issue 22: ``lyra generate`` went from 71 s to 812 s of CPU time with one other
  CPU-bound process on two cores). :func:`set_passive_wait` sets ``OMP_WAIT_POLICY=PASSIVE`` (and Intel
  OpenMP's ``KMP_BLOCKTIME=0``) — it only works **before torch is imported**, because OpenMP reads its
  environment once, when torch loads it. The ``lyra`` command line calls it first thing.
* **More threads than free cores.** One intra-op thread per *free* core: :func:`choose_threads` takes the cores
  this process may run on (``os.sched_getaffinity``, capped by a cgroup CPU quota, v2 or v1), measures how busy
  each of them is over a short sample of ``/proc/stat`` (falling back to the 1-minute load average), and
  subtracts. :func:`configure_threads` applies the choice with ``torch.set_num_threads``.

An explicit choice always wins: ``LYRA_THREADS=N`` (or ``auto``), else ``OMP_NUM_THREADS`` as the user set it.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from lyra.errors import ConfigError

__all__ = ["ThreadChoice", "busy_cores", "choose_threads", "configure_threads", "set_passive_wait", "usable_cores"]

#: Environment that stops OpenMP threads from spinning while they wait (GNU and Intel OpenMP).
PASSIVE_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
#: Seconds of ``/proc/stat`` sampled to see how busy the cores are (the process sleeps meanwhile).
SAMPLE_S = 0.15
#: The environment variable that overrides the choice: a positive integer, or ``auto``.
ENV_THREADS = "LYRA_THREADS"


def set_passive_wait(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` and ``KMP_BLOCKTIME=0`` where the user has not set them.

    Returns True when it can take effect: torch was not imported yet (OpenMP reads these once, at load).
    """
    env = os.environ if environ is None else environ
    for key, value in PASSIVE_ENV.items():
        env.setdefault(key, value)
    return "torch" not in sys.modules


def usable_cores(affinity: set[int] | None = None, cpu_max: str | None = None) -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 quota (``cpu.max``: ``"max 100000"``
    or ``"QUOTA PERIOD"``; read from ``/sys/fs/cgroup/cpu.max`` when not given)."""
    if affinity is None:
        affinity = _affinity()
    n = max(1, len(affinity))
    if cpu_max is None:
        cpu_max = _cgroup_cpu_max()
    parts = cpu_max.split()
    if len(parts) == 2 and parts[0] != "max":
        try:
            quota, period = int(parts[0]), int(parts[1])
            if quota > 0 and period > 0:
                n = min(n, max(1, math.ceil(quota / period)))
        except ValueError:
            pass
    return n


def _cgroup_cpu_max(root: Path = Path("/sys/fs/cgroup")) -> str:
    """The CPU quota as cgroup v2 writes it (``"QUOTA PERIOD"`` or ``"max PERIOD"``), from v2's ``cpu.max`` or v1's
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: none); ``""`` when neither is readable."""
    try:
        return (root / "cpu.max").read_text()
    except OSError:
        pass
    try:
        v1 = root / "cpu"
        quota = int(v1.joinpath("cpu.cfs_quota_us").read_text())
        period = int(v1.joinpath("cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return ""
    return f"{quota if quota > 0 else 'max'} {period}"


def _affinity() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def read_proc_stat(text: str | None = None) -> dict[int, tuple[int, int]]:
    """Per-CPU ``(busy, total)`` jiffies from ``/proc/stat`` (``text``: its contents, for tests); ``{}`` when
    unreadable. Busy is everything but idle and iowait."""
    if text is None:
        try:
            text = Path("/proc/stat").read_text()
        except OSError:
            return {}
    out: dict[int, tuple[int, int]] = {}
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        try:
            cpu = int(name[3:])
            vals = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        except ValueError:
            continue
        if len(vals) < 5:
            continue
        total = sum(vals)
        out[cpu] = (total - vals[3] - vals[4], total)
    return out


def busy_cores(cpus: set[int], sample_s: float = SAMPLE_S,
               read: Callable[[], dict[int, tuple[int, int]]] = read_proc_stat,
               sleep: Callable[[float], None] = time.sleep,
               loadavg: Callable[[], tuple[float, float, float]] = os.getloadavg) -> float:
    """How many of ``cpus`` other processes keep busy (0 … ``len(cpus)``), measured while this process sleeps:
    the busy share of each CPU over ``sample_s`` seconds of ``/proc/stat``, summed. Falls back to the 1-minute
    load average (capped at the number of CPUs) when ``/proc/stat`` gives nothing."""
    before = read()
    if before:
        sleep(sample_s)
        after = read()
        busy = 0.0
        seen = 0
        for cpu in cpus:
            if cpu in before and cpu in after:
                db = after[cpu][0] - before[cpu][0]
                dt = after[cpu][1] - before[cpu][1]
                if dt > 0:
                    busy += min(1.0, max(0.0, db / dt))
                    seen += 1
        if seen:
            return busy * len(cpus) / seen
    try:
        return min(float(len(cpus)), max(0.0, loadavg()[0]))
    except OSError:
        return 0.0


@dataclass(frozen=True)
class ThreadChoice:
    """``threads`` chosen for torch, out of ``usable`` cores of which ``busy`` were busy with other work
    (``None``: not measured), and why (``source``: ``"LYRA_THREADS"``, ``"OMP_NUM_THREADS"`` or ``"free cores"``)."""

    threads: int
    usable: int
    busy: float | None
    source: str

    def describe(self) -> str:
        busy = f", {self.busy:.1f} busy with other work" if self.busy is not None else ""
        return f"{self.threads} CPU thread{'s' * (self.threads != 1)} ({self.source}; {self.usable} usable{busy})"


def _positive_int(value: str | None) -> int | None:
    try:
        n = int(str(value).strip())
    except ValueError:
        return None
    return n if n > 0 else None


def choose_threads(environ: MutableMapping[str, str] | None = None, usable: int | None = None,
                   busy: Callable[[set[int]], float] | None = None) -> ThreadChoice:
    """How many intra-op threads to use now.

    ``LYRA_THREADS=N`` wins, then a user's ``OMP_NUM_THREADS=N``; otherwise one thread per free core: the usable
    cores (:func:`usable_cores`) less those other processes keep busy (:func:`busy_cores`), rounded to the nearest
    whole core, at least 1. An invalid ``LYRA_THREADS`` (not a positive integer or ``auto``) raises ConfigError.
    """
    env = os.environ if environ is None else environ
    n_usable = usable_cores() if usable is None else usable
    raw = env.get(ENV_THREADS, "").strip().lower()
    if raw and raw != "auto":
        n = _positive_int(raw)
        if n is None:
            raise ConfigError(f"{ENV_THREADS} must be a positive integer or 'auto', not {env[ENV_THREADS]!r}")
        return ThreadChoice(n, n_usable, None, ENV_THREADS)
    if not raw:
        n = _positive_int(env.get("OMP_NUM_THREADS"))
        if n is not None:
            return ThreadChoice(n, n_usable, None, "OMP_NUM_THREADS")
    cpus = _affinity()
    taken = (busy or busy_cores)(cpus)
    free = n_usable - taken * n_usable / max(1, len(cpus))  # busy share of the affinity set, scaled to the quota
    n = max(1, min(n_usable, math.floor(free + 0.5)))
    return ThreadChoice(n, n_usable, round(taken, 2), "free cores")


def configure_threads(environ: MutableMapping[str, str] | None = None) -> ThreadChoice:
    """:func:`choose_threads`, applied with ``torch.set_num_threads`` (imports torch)."""
    choice = choose_threads(environ)
    import torch

    torch.set_num_threads(choice.threads)
    return choice
