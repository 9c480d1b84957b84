"""The errors labledger raises for user mistakes and bad input.

Every error carries one line that names the thing at fault and the reason, and, where there is
one, what to do next. The CLI prints that line and exits non-zero; it never shows a traceback for
these.
"""

from __future__ import annotations


class LabledgerError(Exception):
    """Base of every error that is the user's to fix, not a bug in labledger."""


class NotAnArchive(LabledgerError):
    """A path or URL that does not hold a labledger archive."""


class ArchiveExists(LabledgerError):
    """`init` on a place that already holds an archive."""


class CatalogUnavailable(LabledgerError):
    """The catalog database did not answer, or is not at the schema this version expects."""


class StoreUnavailable(LabledgerError):
    """The array store cannot be reached or written."""


class Damaged(StoreUnavailable):
    """Stored bytes no longer match the checksum written with them (``labledger check``)."""


class BadInput(LabledgerError):
    """A raw file that cannot be ingested: unreadable, empty, truncated, of an unknown format."""


class Conflict(LabledgerError):
    """A write that lost a race with another writer, or that contradicts what is recorded."""


class RunConflict(Conflict):
    """A run number already taken by different bytes."""


class NotFound(LabledgerError, KeyError):
    """A run, channel or other named thing that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidArgument(LabledgerError, ValueError):
    """An argument that cannot mean anything: a date that is not a date, a negative count."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for errors that must fit on one line."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


class DataWarning(UserWarning):
    """Data that were read but are suspect: a calibration that yields NaN or inf, say."""


class Unauthorized(LabledgerError):
    """No credentials, or credentials that are unknown, expired or revoked."""


class Forbidden(LabledgerError):
    """Known credentials that do not allow what was asked."""


class TooLarge(LabledgerError):
    """A request or upload over the server's limits."""


class Busy(LabledgerError):
    """A server at one of its limits of concurrent work (open notification streams, say)."""
