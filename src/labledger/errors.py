"""The errors labledger raises for user mistakes and bad input.

Every error carries one line that names the thing at fault and the reason, and, where there is
one, what to do next. The CLI prints that line and exits non-zero; it never shows a traceback for
these. Each kind has its HTTP status (``status``), the one table the server answers with and the
remote client reads back (:func:`for_status`).

>>> NotFound.status, for_status(404) is NotFound
(404, True)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar


class LabledgerError(Exception):
    """Base of every error that is the user's to fix, not a bug in labledger."""

    status: ClassVar[int] = 400  # the HTTP status a server answers it with


class NotAnArchive(LabledgerError):
    """A path or URL that does not hold a labledger archive."""


class ArchiveExists(LabledgerError):
    """`init` on a place that already holds an archive."""


class CatalogUnavailable(LabledgerError):
    """The catalog database did not answer, or is not at the schema this version expects."""

    status = 503


class StoreUnavailable(LabledgerError):
    """The array store cannot be reached or written."""

    status = 503


class Damaged(StoreUnavailable):
    """Stored bytes no longer match the checksum written with them (``labledger check``)."""


class BadInput(LabledgerError):
    """A raw file that cannot be ingested: unreadable, empty, truncated, of an unknown format."""

    status = 422


class Conflict(LabledgerError):
    """A write that lost a race with another writer, or that contradicts what is recorded."""

    status = 409


class RunConflict(Conflict):
    """A run number already taken by different bytes."""


class NotFound(LabledgerError, KeyError):
    """A run, channel or other named thing that does not exist."""

    status = 404

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

    status = 401


class Forbidden(LabledgerError):
    """Known credentials that do not allow what was asked."""

    status = 403


class TooLarge(LabledgerError):
    """A request or upload over the server's limits."""

    status = 413


class Busy(LabledgerError):
    """Work refused because it is being done already or a limit of concurrent work is reached
    (open notification streams on a server, a run another saver is saving)."""

    status = 429


class NotRemote(InvalidArgument, NotImplementedError):
    """What an archive opened through a server cannot do (yet): open the archive locally."""

    status = 501


class Unreachable(CatalogUnavailable, ConnectionError):
    """A server that did not answer: its address, the network, or the server is down."""

    status = 503


# the kinds a status is read back as when the answer does not name one (a labledger server
# always does): a 422 unnamed is a request the server's parameters refused, not a raw file
_BY_STATUS = [
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    Busy,
    NotRemote,
    CatalogUnavailable,
]


def named(name: object, status: int) -> type[LabledgerError]:
    """The error kind a server's answer names (``"error"``: the class's name, as the server
    answers every labledger error), else the one its ``status`` stands for.

    >>> named("BadInput", 400).status, named("nonsense", 404).__name__
    (422, 'NotFound')
    """
    if str(name) not in _NAMED:  # kinds defined since (the live layer's, once loaded)
        _NAMED.update({k.__name__: k for k in _kinds(LabledgerError) if _plain(k)})
    found = _NAMED.get(str(name))
    return found if found is not None else for_status(status)


_NAMED: dict[str, type[LabledgerError]] = {}


def _kinds(base: type[LabledgerError]) -> Iterator[type[LabledgerError]]:
    for kind in base.__subclasses__():
        yield kind
        yield from _kinds(kind)


def _plain(kind: type[LabledgerError]) -> bool:
    """Whether ``kind(message)`` makes one (no kind of its own constructor)."""
    return all("__init__" not in vars(c) for c in kind.__mro__ if issubclass(c, LabledgerError))


def for_status(status: int) -> type[LabledgerError]:
    """The error kind an HTTP error ``status`` stands for: a client error is an
    :class:`InvalidArgument` unless the table says more, a server error the catalog's."""
    found = next((kind for kind in _BY_STATUS if kind.status == status), None)
    return found or (InvalidArgument if status < 500 else CatalogUnavailable)
