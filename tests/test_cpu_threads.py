"""CPU thread settings on a shared machine (lyra.cpu_threads) and the command line's start-up (issue 22, item 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lyra import cpu_threads as ct
from lyra.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src"

STAT_0 = """cpu  100 0 100 800 0 0 0 0 0 0
cpu0 50 0 50 400 0 0 0 0 0 0
cpu1 50 0 50 400 0 0 0 0 0 0
intr 12345
"""
# cpu0: +100 busy of +100 (fully busy); cpu1: +10 busy (iowait counted idle) of +100
STAT_1 = """cpu  210 0 100 890 0 0 0 0 0 0
cpu0 150 0 50 400 0 0 0 0 0 0
cpu1 60 0 50 480 10 0 0 0 0 0
intr 12399
"""


def test_passive_wait_sets_defaults_and_keeps_the_users_choice():
    env: dict[str, str] = {"KMP_BLOCKTIME": "200"}
    ct.set_passive_wait(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "200"}
    env = {"OMP_WAIT_POLICY": "active"}
    ct.set_passive_wait(env)
    assert env["OMP_WAIT_POLICY"] == "active"


def test_usable_cores_follows_affinity_and_cgroup_quota():
    assert ct.usable_cores({0, 1, 2, 3}, "max 100000") == 4
    assert ct.usable_cores({0, 1, 2, 3}, "200000 100000") == 2
    assert ct.usable_cores({0, 1, 2, 3}, "150000 100000") == 2  # 1.5 cores of quota: two threads can use it
    assert ct.usable_cores({0, 1}, "800000 100000") == 2  # the quota never adds cores
    assert ct.usable_cores({0, 1, 2}, "") == 3
    assert ct.usable_cores({0, 1, 2}, "garbage here") == 3


def test_proc_stat_parsing():
    stat = ct.read_proc_stat(STAT_1)
    assert stat == {0: (200, 600), 1: (110, 600)}


def test_busy_cores_from_two_samples():
    snaps = iter([ct.read_proc_stat(STAT_0), ct.read_proc_stat(STAT_1)])
    slept = []
    busy = ct.busy_cores({0, 1}, 0.1, read=lambda: next(snaps), sleep=slept.append)
    assert slept == [0.1]
    assert busy == pytest.approx(1.0 + 10 / 100)


def test_busy_cores_falls_back_to_the_load_average():
    busy = ct.busy_cores({0, 1}, read=dict, sleep=lambda s: None, loadavg=lambda: (5.0, 1.0, 1.0))
    assert busy == 2.0  # capped at the CPUs we may use
    busy = ct.busy_cores({0, 1}, read=dict, sleep=lambda s: None, loadavg=lambda: (0.7, 1.0, 1.0))
    assert busy == pytest.approx(0.7)


@pytest.mark.parametrize(("taken", "expected"), [(0.0, 2), (0.3, 2), (1.0, 1), (1.4, 1), (2.0, 1)])
def test_one_thread_per_free_core(monkeypatch, taken, expected):
    monkeypatch.setattr(ct, "_affinity", lambda: {0, 1})
    choice = ct.choose_threads({}, usable=2, busy=lambda cpus: taken)
    assert choice.threads == expected
    assert choice.source == "free cores"
    assert choice.busy == pytest.approx(taken)


def test_free_cores_scale_to_a_quota(monkeypatch):
    # 8 CPUs in the affinity set, a quota of 4: 4 of the 8 busy elsewhere leaves half the quota.
    monkeypatch.setattr(ct, "_affinity", lambda: set(range(8)))
    assert ct.choose_threads({}, usable=4, busy=lambda cpus: 4.0).threads == 2


def test_explicit_choices_win(monkeypatch):
    never = lambda cpus: pytest.fail("measured although the user chose")  # noqa: E731
    assert ct.choose_threads({"LYRA_THREADS": "3"}, usable=2, busy=never).threads == 3
    c = ct.choose_threads({"OMP_NUM_THREADS": "1"}, usable=2, busy=never)
    assert (c.threads, c.source) == (1, "OMP_NUM_THREADS")
    # LYRA_THREADS=auto measures even where OMP_NUM_THREADS is set
    monkeypatch.setattr(ct, "_affinity", lambda: {0, 1})
    c = ct.choose_threads({"LYRA_THREADS": "auto", "OMP_NUM_THREADS": "1"}, usable=2, busy=lambda cpus: 0.0)
    assert (c.threads, c.source) == (2, "free cores")
    for bad in ("0", "-2", "two"):
        with pytest.raises(ConfigError, match="LYRA_THREADS"):
            ct.choose_threads({"LYRA_THREADS": bad}, usable=2, busy=never)


def test_real_machine_choice_is_within_the_usable_cores():
    c = ct.choose_threads({})
    assert 1 <= c.threads <= c.usable <= (os.cpu_count() or 1)


def _run_lyra(args: list[str], **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", "GOMP_SPINCOUNT")}
    e["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [e.get("PYTHONPATH")])])
    e.update(env)
    return subprocess.run([sys.executable, "-m", "lyra", *args], env=e, capture_output=True, text=True, timeout=300)


def test_the_command_line_stops_openmp_spinning_before_torch_loads():
    # libgomp prints its settings at load with OMP_DISPLAY_ENV=verbose; a passive wait has a spin count of 0
    # (torch imported first would show the default, 300000).
    p = _run_lyra(["--version"], OMP_DISPLAY_ENV="verbose")
    assert p.returncode == 0, p.stderr
    if "GOMP_SPINCOUNT" not in p.stderr:
        pytest.skip("torch's OpenMP here is not libgomp")
    assert "GOMP_SPINCOUNT = '0'" in p.stderr
    p = _run_lyra(["--version"], OMP_DISPLAY_ENV="verbose", OMP_WAIT_POLICY="ACTIVE")
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in p.stderr  # the user's own setting stands


def test_a_bad_thread_count_is_one_line(tmp_path):
    p = _run_lyra(["world", "--seed", "0", "-o", str(tmp_path / "w")], LYRA_THREADS="many")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("lyra world: error: LYRA_THREADS")
    assert not (tmp_path / "w").exists()


def test_in_process_main_restores_the_thread_count(tmp_path, monkeypatch):
    import torch

    from lyra.cli import main

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("LYRA_THREADS", "1")
    before = torch.get_num_threads()
    seen = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n, _real=torch.set_num_threads: (seen.append(n), _real(n)))
    main(["world", "--seed", "-1", "-o", str(tmp_path / "w")])  # fails on the seed, after the threads were set
    assert seen == [1, before]
    assert torch.get_num_threads() == before


def test_cgroup_quota_v2_then_v1(tmp_path):
    assert ct._cgroup_cpu_max(tmp_path) == ""
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert ct._cgroup_cpu_max(tmp_path) == "max 100000"
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("150000\n")
    assert ct.usable_cores({0, 1, 2, 3}, ct._cgroup_cpu_max(tmp_path)) == 2
    (tmp_path / "cpu.max").write_text("300000 100000\n")  # v2 wins
    assert ct.usable_cores({0, 1, 2, 3}, ct._cgroup_cpu_max(tmp_path)) == 3
