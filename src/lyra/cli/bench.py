"""``lyra bench NAME [--gpu] [--write] [ARGS...]``: run one of the repository's benchmark scripts.

A thin front over ``benchmarks/*_cpu.py`` (CPU, the default) and ``benchmarks/gpu/*.py`` (``--gpu``): the script
runs with the current Python (``sys.executable``), in the current folder, with the repository's ``src/`` first on
``PYTHONPATH``; every argument after ``NAME`` that is not ``--gpu`` or ``--write`` goes to the script unchanged
(see ``lyra bench NAME -- --help``). ``--write`` stores the script's JSON result under ``docs/bench/`` of the
repository (``--write`` for the scripts that have it, else ``--json docs/bench/<script>.json``).
``lyra bench --list`` lists the benchmarks, one line each: the first sentence of each script's docstring.

The scripts live in the repository, not in the installed package: they are found next to the ``src/`` folder
lyra was imported from (an editable install or ``PYTHONPATH=src``), else in the current folder.

Names: a CPU script ``benchmarks/<name>_cpu.py`` is ``<name>``; the GPU scripts are named by
:data:`GPU_NAMES` (``generate``, ``teacher`` = the SDG throughput of the teacher, ``student`` = the official
decoder, ``student-train``, ``render`` = gsplat, ``tokenizer``, ``world``, ``sdg``); a GPU script not named there
goes by its file stem.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lyra.errors import ConfigError, LyraError

#: ``lyra bench NAME --gpu`` → script stem in ``benchmarks/gpu/``.
GPU_NAMES = {
    "generate": "generate_gpu",
    "teacher": "sdg_throughput",
    "sdg": "sdg_throughput",
    "student": "student_official",
    "student-train": "student_train",
    "render": "render_gsplat",
    "tokenizer": "tokenizer_official",
    "world": "world_gpu",
}
#: ``--list`` shows at most this many characters of a script's first docstring sentence.
SUMMARY_CHARS = 110
#: Options of ``lyra bench`` itself, recognised anywhere after ``NAME``.
OWN_FLAGS = ("--gpu", "--write")


class BenchmarksMissing(LyraError):
    """lyra was installed without the repository's ``benchmarks/`` folder."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script: ``name`` (as ``lyra bench`` takes it), ``gpu``, ``path``, ``summary`` (first docstring
    line), ``output`` (``"--write"``, ``"--json"`` or ``None``: how the script stores its results)."""

    name: str
    gpu: bool
    path: Path
    summary: str
    output: str | None


def _candidate_roots() -> list[Path]:
    import lyra

    return [Path(lyra.__file__).resolve().parent.parent.parent, Path.cwd()]


def repository_root() -> Path:
    """The repository holding ``benchmarks/`` (next to lyra's ``src/``, else the current folder).

    Raises BenchmarksMissing (with what to do) when neither has one.
    """
    for root in _candidate_roots():
        if (root / "benchmarks").is_dir() and any((root / "benchmarks").glob("*.py")):
            return root
    raise BenchmarksMissing("the benchmark scripts live in the repository's benchmarks/ folder, which this lyra "
                            "installation does not have: run 'lyra bench' from a clone of the repository (or install "
                            "it with 'pip install -e .')")


def _describe(path: Path) -> tuple[str, str | None]:
    """(first sentence of the docstring's first paragraph, how the script writes its results) of a script,
    read without importing it."""
    try:
        src = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(src)) or ""
    except (OSError, SyntaxError, UnicodeDecodeError):
        return "(unreadable script)", None
    para = " ".join(doc.strip().split("\n\n")[0].split()).replace("``", "")
    first = re.split(r"(?<=[.)])\s+(?=[A-Z])", para)[0] if para else "(no description)"
    if len(first) > SUMMARY_CHARS:
        first = first[:SUMMARY_CHARS - 1].rstrip() + "…"
    output = "--write" if '"--write"' in src else "--json" if '"--json"' in src else None
    return first, output


def discover(root: Path | None = None) -> list[Benchmark]:
    """All benchmarks of the repository at ``root`` (default :func:`repository_root`): CPU first, by name."""
    root = repository_root() if root is None else root
    found: list[Benchmark] = []
    for path in sorted((root / "benchmarks").glob("*_cpu.py")):
        found.append(Benchmark(path.stem.removesuffix("_cpu"), False, path, *_describe(path)))
    gpu_dir = root / "benchmarks" / "gpu"
    scripts = {p.stem: p for p in sorted(gpu_dir.glob("*.py")) if not p.name.startswith("_")} \
        if gpu_dir.is_dir() else {}
    named = set()
    for name, stem in GPU_NAMES.items():
        if stem in scripts:
            found.append(Benchmark(name, True, scripts[stem], *_describe(scripts[stem])))
            named.add(stem)
    for stem, path in scripts.items():
        if stem not in named:
            found.append(Benchmark(stem, True, path, *_describe(path)))
    return found


def find_benchmark(name: str, gpu: bool, root: Path | None = None) -> Benchmark:
    """The benchmark ``name`` (``gpu``: from ``benchmarks/gpu/``); ConfigError naming the choices otherwise."""
    all_ = discover(root)
    for b in all_:
        if b.name == name and b.gpu == gpu:
            return b
    if any(b.name == name for b in all_):
        other = "a GPU benchmark only: add --gpu" if not gpu else "a CPU benchmark only: drop --gpu"
        raise ConfigError(f"benchmark {name!r} is {other} (lyra bench --list)")
    names = sorted({b.name for b in all_ if b.gpu == gpu})
    raise ConfigError(f"unknown {'GPU ' if gpu else ''}benchmark {name!r}; choose one of {', '.join(names)} "
                      "(lyra bench --list)")


def format_list(benchmarks: list[Benchmark], root: Path) -> str:
    """The ``--list`` text: one line per benchmark (name, script relative to ``root``, summary)."""
    width = max(len(b.name) for b in benchmarks) if benchmarks else 0
    lines = []
    for gpu, title in ((False, "CPU (lyra bench NAME):"), (True, "GPU (lyra bench NAME --gpu):")):
        group = [b for b in benchmarks if b.gpu == gpu]
        if not group:
            continue
        lines.append(title)
        pw = max(len(str(b.path.relative_to(root))) for b in group)
        lines += [f"  {b.name:<{width}}  {str(b.path.relative_to(root)):<{pw}}  {b.summary}" for b in group]
    return "\n".join(lines)


def command_line(bench: Benchmark, extra: list[str], write: bool, root: Path) -> list[str]:
    """The argv that runs ``bench`` with the pass-through ``extra`` arguments (``write``: store its JSON)."""
    argv = [sys.executable, str(bench.path), *extra]
    if write:
        if bench.output is None:
            raise ConfigError(f"benchmark {bench.name!r} ({bench.path.name}) has no JSON output; run it without "
                              "--write")
        if bench.output == "--write":
            if "--write" not in extra:
                argv.append("--write")
        else:
            if any(a == "--json" or a.startswith("--json=") for a in extra):
                raise ConfigError("--write and --json both name an output; give one of them")
            argv += ["--json", str(root / "docs" / "bench" / f"{bench.path.stem}.json")]
    return argv


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="run a benchmark script of the repository (benchmarks/, benchmarks/gpu/)",
        description="Run one of the repository's benchmark scripts with the current Python. Arguments after NAME "
        "other than --gpu/--write are passed to the script (its options: lyra bench NAME -- --help).",
        epilog="Examples: lyra bench --list; lyra bench render --n 10000 --repeats 3; lyra bench generate --gpu "
        "--write --steps 35")
    p.add_argument("--list", action="store_true", help="list the benchmarks (one line each) and exit")
    p.add_argument("--gpu", action="store_true", help="the GPU script of NAME (benchmarks/gpu/)")
    p.add_argument("--write", action="store_true", help="store the script's JSON result under docs/bench/")
    p.add_argument("name", nargs="?", metavar="NAME", help="benchmark name (see --list)")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="passed to the script")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    extra = list(args.args or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    gpu = args.gpu or "--gpu" in extra
    write = args.write or "--write" in extra
    extra = [a for a in extra if a not in OWN_FLAGS]
    root = repository_root()
    if args.list:
        print(format_list(discover(root), root))
        return 0
    if not args.name:
        raise ConfigError("name a benchmark (lyra bench NAME [--gpu] [--write] [ARGS...]); lyra bench --list shows "
                          "them")
    bench = find_benchmark(args.name, gpu, root)
    argv = command_line(bench, extra, write, root)
    env = dict(os.environ)
    src = root / "src"
    if (src / "lyra").is_dir():
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    print(f"lyra bench: {' '.join([Path(argv[0]).name, str(bench.path.relative_to(root)), *argv[2:]])}",
          file=sys.stderr, flush=True)
    return subprocess.run(argv, env=env, check=False).returncode
