"""Who may do what: users with a role in each project, API keys with scopes and an expiry, and
the audit log of writes.

A key is shown once, when made: ``ll_<id>_<secret>``. The catalog keeps its id, the sha256 of
its secret, its scopes and expiry, never the secret. A request is allowed when the key has the
scope (``read``, ``write``, ``admin``) and its user a role at least as strong in the project
of what is touched (``reader`` reads, ``writer`` also writes, ``admin`` also manages).
Authentication is one small interface, :class:`Principal` from a request's credentials, so
that another front (JupyterHub, say) can replace API keys without touching the routes.

>>> import tempfile, labledger as ll
>>> la = ll.init(tempfile.mkdtemp() + "/a")
>>> access = Access(la.catalog)
>>> access.add_user("alice", project="default", role="reader", by="admin")
>>> key = access.create_key("alice", scopes=["read"])
>>> who = access.authenticate(key)
>>> who.user, who.can("read", "default"), who.can("write", "default")
('alice', True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from labledger.catalog import Catalog
from labledger.catalog.schema import ApiKeyRow, AuditRow, MembershipRow, UserRow
from labledger.errors import InvalidArgument, NotFound, Unauthorized
from labledger.ids import check_name

ROLES = ("reader", "writer", "admin")  # each can do what the ones before it can
SCOPES = ("read", "write", "admin")
_NEEDS = {"read": "reader", "write": "writer", "admin": "admin"}
_KEY = re.compile(r"^ll_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a user, the scopes of the key used, the user's roles by
    project, and ``key``, what names the credentials however they were spelled (an API key's
    id), for what is counted per key. ``anonymous`` readers (a server started with
    ``--public``) may read every project."""

    user: str | None
    scopes: frozenset[str]
    roles: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
    key: str | None = None

    def can(self, scope: str, project: str) -> bool:
        """Whether this principal may ``scope`` ("read", "write", "admin") in ``project``."""
        if scope not in self.scopes:
            return False
        if self.anonymous:
            return scope == "read"
        role = self.roles.get(project)
        return role is not None and ROLES.index(role) >= ROLES.index(_NEEDS[scope])

    def projects(self, scope: str = "read") -> set[str] | None:
        """The projects this principal may ``scope`` in; None means all of them."""
        if self.anonymous:
            return None if scope == "read" else set()
        return {p for p in self.roles if self.can(scope, p)}

    @property
    def name(self) -> str:
        return self.user or "anonymous"


ANONYMOUS = Principal(user=None, scopes=frozenset({"read"}), anonymous=True)


class Access:
    """Users, roles, keys and the audit log of one catalog."""

    def __init__(self, catalog: Catalog):
        self._catalog = catalog

    # -- users and roles -----------------------------------------------------------------------

    def add_user(self, name: str, *, project: str, role: str, by: str) -> None:
        """Make ``name`` a user (if new) with ``role`` in ``project`` (replacing a former role)."""
        check_name(name, "user name")
        check_name(project, "project")
        if role not in ROLES:
            raise InvalidArgument(f"role {role!r}: one of {', '.join(ROLES)}")
        with self._catalog.transaction(f"adding user {name}") as session:
            if session.get(UserRow, name) is None:
                session.add(UserRow(name=name, created=datetime.now(UTC), created_by=by))
                session.flush()
            found = session.get(MembershipRow, (name, project))
            if found is None:
                session.add(MembershipRow(user=name, project=project, role=role))
            else:
                found.role = role
            session.add(_audit(by, "user.add", name, {"project": project, "role": role}))

    def users(self) -> list[dict[str, Any]]:
        """Every user with their roles by project."""
        with self._catalog.reading() as session:
            users = list(session.scalars(select(UserRow).order_by(UserRow.name)))
            roles = list(session.scalars(select(MembershipRow)))
        return [
            {
                "name": u.name,
                "created": u.created.isoformat(),
                "created_by": u.created_by,
                "roles": {m.project: m.role for m in roles if m.user == u.name},
            }
            for u in users
        ]

    # -- keys ----------------------------------------------------------------------------------

    def create_key(
        self,
        user: str,
        *,
        scopes: Sequence[str] = ("read",),
        expires: datetime | timedelta | None = timedelta(days=365),
        note: str = "",
        by: str | None = None,
    ) -> str:
        """A new API key for ``user``; returned once, only its hash is kept."""
        scopes = sorted(set(scopes))
        unknown = [s for s in scopes if s not in SCOPES]
        if not scopes or unknown:
            raise InvalidArgument(
                f"scopes {unknown or scopes!r}: give one or more of {', '.join(SCOPES)}"
            )
        now = datetime.now(UTC)
        if isinstance(expires, timedelta):
            expires = now + expires
        if expires is not None and (expires.tzinfo is None or expires <= now):
            raise InvalidArgument(f"expires={expires}: a time in the future, with its zone")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with self._catalog.transaction(f"making a key for {user}") as session:
            if session.get(UserRow, user) is None:
                raise NotFound(f"there is no user {user!r}; add one with `labledger user add`")
            session.add(
                ApiKeyRow(
                    id=key_id,
                    user=user,
                    secret_sha256=_hash(secret),
                    scopes=scopes,
                    created=now,
                    expires=expires,
                    revoked=None,
                    note=note,
                )
            )
            session.add(_audit(by or user, "key.create", key_id, {"user": user, "scopes": scopes}))
        return f"ll_{key_id}_{secret}"

    def revoke_key(self, key_id: str, *, by: str) -> None:
        with self._catalog.transaction(f"revoking key {key_id}") as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"there is no key {key_id!r} (`labledger key list`)")
            row.revoked = datetime.now(UTC)
            session.add(_audit(by, "key.revoke", key_id, {"user": row.user}))

    def keys(self, user: str | None = None) -> list[dict[str, Any]]:
        """The keys (never their secrets): id, user, scopes, created, expires, revoked."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.created)
        if user is not None:
            query = query.where(ApiKeyRow.user == user)
        with self._catalog.reading() as session:
            rows = list(session.scalars(query))
        return [
            {
                "id": r.id,
                "user": r.user,
                "scopes": r.scopes,
                "created": _iso(r.created),
                "expires": _iso(r.expires),
                "revoked": _iso(r.revoked),
                "note": r.note,
            }
            for r in rows
        ]

    def authenticate(self, key: str) -> Principal:
        """The principal of an API key; :class:`Unauthorized` if it is malformed, unknown,
        revoked or expired (one message for all: a guesser learns nothing)."""
        match = _KEY.fullmatch(key or "")
        refused = Unauthorized("the API key is not valid (unknown, revoked or expired)")
        if match is None:
            raise refused
        key_id, secret = match.groups()
        with self._catalog.reading() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or not hmac.compare_digest(row.secret_sha256, _hash(secret)):
                raise refused
            if row.revoked is not None or (row.expires and row.expires <= datetime.now(UTC)):
                raise refused
            query = select(MembershipRow).where(MembershipRow.user == row.user)
            roles = {m.project: m.role for m in session.scalars(query)}
        return Principal(user=row.user, scopes=frozenset(row.scopes), roles=roles, key=key_id)

    # -- the audit log ---------------------------------------------------------------------------

    def record(self, who: str, action: str, target: str, detail: dict[str, Any]) -> None:
        """Append a write to the audit log."""
        with self._catalog.transaction(f"auditing {action}") as session:
            session.add(_audit(who, action, target, detail))

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit entries first."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        with self._catalog.reading() as session:
            rows = list(session.scalars(query))
        return [
            {
                "at": r.at.isoformat(),
                "who": r.who,
                "action": r.action,
                "target": r.target,
                "detail": r.detail,
            }
            for r in rows
        ]


def _audit(who: str, action: str, target: str, detail: dict[str, Any]) -> AuditRow:
    return AuditRow(at=datetime.now(UTC), who=who, action=action, target=target, detail=detail)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


class ApiKeys:
    """Authentication by API key: a request's principal from its ``Authorization: Bearer``
    (or ``X-API-Key``) header; anonymous if it has none and ``public``, else refused. A key's
    principal is kept ``keep_s`` seconds: two catalog queries per request would be most of a
    small read's time (so a revocation or a new role takes that long to count).

    >>> access = Access(la.catalog)
    >>> access.add_user("alice", project="default", role="reader", by="admin")
    >>> key = access.create_key("alice", scopes=["read"])
    >>> ApiKeys(access)({"authorization": f"Bearer {key}"}).user
    'alice'
    """

    def __init__(self, access: Access, *, public: bool = False, keep_s: float = 5.0):
        self._access, self._public, self.keep_s = access, public, keep_s
        self._known: dict[str, tuple[float, Principal]] = {}

    def __call__(self, headers: Mapping[str, str]) -> Principal:
        key = headers.get("x-api-key")
        authorization = headers.get("authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Authorization takes 'Bearer <API key>'")
            key = token.strip()
        if not key:
            if self._public:
                return ANONYMOUS
            raise Unauthorized(
                "this server needs an API key: `labledger key create USER`, then send it as "
                "'Authorization: Bearer <key>'"
            )
        now = time.monotonic()
        known = self._known.get(key)
        if known is not None and now - known[0] < self.keep_s:
            return known[1]
        who = self._access.authenticate(key)
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[key] = (now, who)
        return who
