"""Atomic file writing: a file appears complete at its final path or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lyra.errors import InputFileError, OutputPathError


def check_input_file(path: str | os.PathLike) -> Path:
    """Return ``path`` as a ``Path`` after checking it is an existing, non-empty, readable file."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file")
    if p.is_dir():
        raise InputFileError(f"{p}: is a directory, expected a file")
    if not os.access(p, os.R_OK):
        raise InputFileError(f"{p}: not readable (check its permissions)")
    if p.stat().st_size == 0:
        raise InputFileError(f"{p}: the file is empty")
    return p


def check_output_dir(path: str | os.PathLike) -> Path:
    """Check that ``path``'s folder exists and is writable; return ``path`` as a ``Path``."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise OutputPathError(f"{p}: is a directory, give a file name")
    if not parent.exists():
        raise OutputPathError(f"{p}: folder {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK):
        raise OutputPathError(f"{p}: folder {parent} is not writable")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it.

    The temporary name keeps ``path``'s extension, so writers that pick a format by extension work.

    Usage::

        with atomic_path("scene.ply") as tmp:
            write_everything(tmp)
    """
    final = check_output_dir(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent or ".")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def replace_dir(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move the finished folder ``tmp`` to ``final``, replacing what is there (a folder) almost atomically:
    the old folder is first renamed aside (``.NAME.old`` beside it), then ``tmp`` takes its place, then the
    old one is deleted. A reader sees the old or the new folder, never a mix. Returns ``final``."""
    import shutil

    tmp, final = Path(tmp), Path(final)
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success rename it to ``path``, else delete it.

    ``path`` must not exist, or be an empty folder (it is then replaced).
    """
    import shutil

    final = Path(path)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise OutputPathError(f"{final}: already exists and is not an empty folder (choose another path)")
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.exists():
        raise OutputPathError(f"{final}: folder {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK):
        raise OutputPathError(f"{final}: folder {parent} is not writable")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
        if final.exists():
            final.rmdir()
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
