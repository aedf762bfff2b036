"""Atomic file writing: a file appears complete at its final path or not at all.

Temporary files and folders are named ``.NAME.<pid>.<random>.tmp[.ext]`` beside their target. They are
registered while in use: :func:`install_cleanup_on_sigterm` makes SIGTERM delete them (and unwind like
Ctrl-C), and :func:`remove_stale_temps` deletes those of a process that no longer runs (``kill -9``) on the next
write into the same folder. A folder replaced by :func:`replace_dir` is recoverable at any instant:
:func:`recover_replaced_dir` puts the old folder back when a crash fell between its two renames.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def confined_file(root: str | os.PathLike, name: object, what: str) -> Path:
    """``root / name`` for a file ``name`` listed inside the folder ``root`` (e.g. in its ``index.json``), refused
    unless it is a plain file name of a regular file directly in ``root``: no ``..``, no absolute path, no
    separator, no symbolic link (a listing may not make lyra read outside the folder).

    Raises:
        FormatError: the name is not a plain file name, or names a link. InputFileError: the file is missing.
    """
    from lyra.errors import FormatError

    root = Path(root)
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name \
            or "\0" in name or Path(name).name != name:
        raise FormatError(f"{root}: {what} {name!r} is not a plain file name inside the folder")
    p = root / name
    if p.is_symlink():
        raise FormatError(f"{root}: {what} {name} is a symbolic link; lyra reads only files inside the folder")
    if not p.is_file():
        raise InputFileError(f"{root}: {name} is listed as {what} but missing (incomplete copy?)")
    try:
        p.resolve(strict=True).relative_to(root.resolve(strict=True))
    except (OSError, ValueError):
        raise FormatError(f"{root}: {what} {name} lies outside the folder") from None
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


# ------------------------------------------------------------------------------------------------ temporaries
#: Our temporaries: ``.NAME.<pid>.<random>.tmp`` plus an optional extension.
_TEMP_RE = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]+\.tmp(\.[A-Za-z0-9]+)?$")
_LIVE_TEMPS: set[Path] = set()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries of our naming in ``folder`` whose process has ended; return what was removed."""
    folder = Path(folder) if str(folder) else Path(".")
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP_RE.match(p.name)
        if not m or _alive(int(m.group(1))):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def make_temp_file(final: str | os.PathLike) -> Path:
    """A new empty temporary file beside ``final`` (same extension), registered for cleanup."""
    final = Path(final)
    parent = final.parent if str(final.parent) else Path(".")
    remove_stale_temps(parent)
    fd, name = tempfile.mkstemp(prefix=f".{final.stem}.{os.getpid()}.", suffix=f".tmp{final.suffix}", dir=parent)
    os.close(fd)
    tmp = Path(name)
    _LIVE_TEMPS.add(tmp)
    return tmp


def make_temp_dir(final: str | os.PathLike) -> Path:
    """A new empty temporary folder beside ``final``, registered for cleanup (stale ones are removed first)."""
    final = Path(final)
    parent = final.parent if str(final.parent) else Path(".")
    remove_stale_temps(parent)
    recover_replaced_dir(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp", dir=parent))
    _LIVE_TEMPS.add(tmp)
    return tmp


def discard_temp(tmp: str | os.PathLike) -> None:
    """Delete a temporary (file or folder) if it is still there, and forget it."""
    tmp = Path(tmp)
    _LIVE_TEMPS.discard(tmp)
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def cleanup_temps() -> None:
    """Delete every registered temporary of this process."""
    for tmp in list(_LIVE_TEMPS):
        discard_temp(tmp)


def _on_sigterm(signum: int, frame: Any) -> None:
    cleanup_temps()
    raise SystemExit(128 + signum)


def install_cleanup_on_sigterm() -> None:
    """Make SIGTERM delete this process's temporaries and exit (status 143) through the normal unwinding."""
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, _on_sigterm)


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
    tmp = make_temp_file(final)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
        _LIVE_TEMPS.discard(tmp)
    except BaseException:
        discard_temp(tmp)
        raise


def replace_dir(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move the finished folder ``tmp`` to ``final``, replacing what is there (a folder) almost atomically:
    the old folder is first renamed aside (``.NAME.old`` beside it), then ``tmp`` takes its place, then the
    old one is deleted. A reader sees the old or the new folder, never a mix; a crash between the two renames
    leaves ``.NAME.old``, which :func:`recover_replaced_dir` (called by the next write and by readers) puts
    back. Returns ``final``."""
    tmp, final = Path(tmp), Path(final)
    recover_replaced_dir(final)
    if final.exists():
        old = _old_name(final)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _LIVE_TEMPS.discard(tmp)
    return final


def _old_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.old")


def recover_replaced_dir(final: str | os.PathLike) -> bool:
    """Finish or undo a :func:`replace_dir` that a crash interrupted; ``True`` when something was restored.

    ``.NAME.old`` without ``NAME``: the crash fell between the renames; the old folder is put back.
    Both present: the crash fell after them; the old one is deleted.
    """
    final = Path(final)
    old = _old_name(final)
    if not old.is_dir() or old.is_symlink():
        return False
    if final.exists() or final.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
        return False
    os.replace(old, final)
    return True


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success rename it to ``path``, else delete it.

    ``path`` must not exist, or be an empty folder (it is then replaced).
    """
    final = Path(path)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise OutputPathError(f"{final}: already exists and is not an empty folder (choose another path)")
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.exists():
        raise OutputPathError(f"{final}: folder {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK):
        raise OutputPathError(f"{final}: folder {parent} is not writable")
    tmp = make_temp_dir(final)
    try:
        yield tmp
        if final.exists():
            final.rmdir()
        os.replace(tmp, final)
        _LIVE_TEMPS.discard(tmp)
    except BaseException:
        discard_temp(tmp)
        raise
