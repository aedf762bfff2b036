"""The ``lyra`` command line. Each sub-command lives in its own module ``lyra.cli.<name>``.

A sub-command module defines ``register(subparsers)`` which adds its parser and sets
``func=run`` (``run(args) -> int``). User errors (``LyraError``) print as one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lyra import __version__
from lyra.errors import LyraError

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = ("generate", "render", "view", "convert", "info", "mesh", "world", "tokenizer", "teacher", "sdg", "train",
            "eval", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lyra",
        description="One image → an explicit 3D Gaussian Splatting scene (a re-implementation of NVIDIA's Lyra).",
        epilog="Run 'lyra COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"lyra {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    try:
        return int(args.func(args) or 0)
    except LyraError as e:
        print(f"lyra {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"lyra {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
