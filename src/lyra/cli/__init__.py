"""The ``lyra`` command line. Each sub-command lives in its own module ``lyra.cli.<name>``.

A sub-command module defines ``register(subparsers)`` which adds its parser and sets
``func=run`` (``run(args) -> int``). User errors (``LyraError``) print as one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Callable

from lyra import __version__
from lyra.cpu_threads import configure_threads, set_passive_wait

# Before any command module imports torch: OpenMP reads its wait policy once, when torch loads it, and a spinning
# wait makes a busy CPU many times slower (lyra.cpu_threads).
set_passive_wait()

from lyra.cli._common import OneLineParser  # noqa: E402
from lyra.errors import LyraError  # noqa: E402
from lyra.fileio import install_cleanup_on_sigterm  # noqa: E402

#: OS errors a user's environment causes (full disk, quota, read-only medium): one line, not a traceback.
_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM,
               errno.ENOTDIR, errno.ENAMETOOLONG}

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = ("generate", "render", "view", "convert", "info", "mesh", "world", "tokenizer", "teacher", "sdg", "train",
            "eval", "bench")
#: Commands that compute on the CPU: their torch thread count follows the free cores (lyra.cpu_threads).
COMPUTE_COMMANDS = frozenset({"generate", "render", "mesh", "world", "tokenizer", "teacher", "sdg", "train", "eval"})


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="lyra",
        description="One image → an explicit 3D Gaussian Splatting scene (a re-implementation of NVIDIA's Lyra).",
        epilog="Run 'lyra COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"lyra {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"lyra.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"lyra.cli.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    install_cleanup_on_sigterm()  # SIGTERM deletes our temporaries and unwinds like Ctrl-C
    try:
        restore = _threads_for(args.command)
    except LyraError as e:  # a bad LYRA_THREADS
        print(f"lyra {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    try:
        return _run(args)
    finally:
        restore()


def _threads_for(command: str | None) -> Callable[[], None]:
    """One torch thread per free core for a computing command (``LYRA_THREADS`` / ``OMP_NUM_THREADS`` override).
    Returns what restores the previous count (``main`` called in-process, e.g. by tests, leaves no trace)."""
    if command not in COMPUTE_COMMANDS:
        return lambda: None
    import torch

    before = torch.get_num_threads()
    configure_threads()
    return lambda: torch.set_num_threads(before)


def _run(args: argparse.Namespace) -> int:
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that left (| head) is met here, not at exit
        return code
    except LyraError as e:
        print(f"lyra {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"lyra {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. lyra info X | head -3: the reader left; stop quietly
        _silence_stdout()
        return 141
    except OSError as e:
        if e.errno not in _ENV_ERRNOS:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"lyra {args.command}: error: {where}{e.strerror or e} (nothing was written)", file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
