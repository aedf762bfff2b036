"""Errors a user can cause. The CLI prints them on one line and exits non-zero.

Every message says what went wrong *and* what to do about it. Only what a user can cause (a file, an option,
a preset, missing weights) raises a :class:`LyraError`; a broken internal contract (a tensor of the wrong shape
passed between modules, a model misused by code) raises ``ValueError``, ``TypeError`` or fails an ``assert``,
and the CLI lets it through with its traceback: it is a bug, not a user mistake.
"""

from __future__ import annotations


class LyraError(Exception):
    """Base class of every error that a user (not a bug) can cause."""

    exit_code = 2


class InputFileError(LyraError):
    """An input file is missing, unreadable, empty, truncated or of the wrong format."""


class FormatError(InputFileError):
    """A file's content does not follow its format (bad header, wrong sizes, non-finite values)."""


class OutputPathError(LyraError):
    """An output path cannot be written (missing folder, no permission, unknown extension)."""


class ConfigError(LyraError):
    """An option, preset or configuration value is invalid."""


class WeightsError(LyraError):
    """Model weights are missing, or do not match the model they are loaded into."""
