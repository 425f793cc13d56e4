"""Operator accounts in PostgreSQL, passwords hashed with argon2id (argon2-cffi)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = ("read-only", "operator")
NAME_PATTERN = r"[A-Za-z0-9_.@-]{1,64}"
MIN_PASSWORD = 10
_hasher = PasswordHasher()   # argon2id with the library's current recommended parameters
# Verified when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash("not a password of anyone")


class UserError(Exception):
    """A user command that cannot be done (unknown user, weak password, bad role)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    session_version: int


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")


def add(conn: psycopg.Connection[Any], name: str, password: str, role: str) -> None:
    import re
    if not re.fullmatch(NAME_PATTERN, name):
        raise UserError(f"a user name is 1-64 letters, digits, _ . @ -: {name!r}")
    if role not in ROLES:
        raise UserError(f"the role is one of {', '.join(ROLES)}")
    _check_password(password)
    try:
        conn.execute("INSERT INTO web_users (name, pw_hash, role) VALUES (%s, %s, %s)",
                     (name, _hasher.hash(password), role))
    except psycopg.errors.UniqueViolation as exc:
        raise UserError(f"user {name} exists already (use passwd)") from exc


def set_password(conn: psycopg.Connection[Any], name: str, password: str) -> None:
    """A new password; the user's open sessions end."""
    _check_password(password)
    cur = conn.execute("UPDATE web_users SET pw_hash = %s, session_version = session_version + 1, "
                       "changed_at = now() WHERE name = %s", (_hasher.hash(password), name))
    if cur.rowcount != 1:
        raise UserError(f"no user {name}")


def set_role(conn: psycopg.Connection[Any], name: str, role: str | None = None,
             disabled: bool | None = None) -> None:
    if role is not None and role not in ROLES:
        raise UserError(f"the role is one of {', '.join(ROLES)}")
    cur = conn.execute(
        "UPDATE web_users SET role = COALESCE(%s, role), disabled = COALESCE(%s, disabled), "
        "session_version = session_version + 1, changed_at = now() WHERE name = %s",
        (role, disabled, name))
    if cur.rowcount != 1:
        raise UserError(f"no user {name}")


def listing(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT name, role, disabled, created_at, changed_at FROM web_users "
                        "ORDER BY name").fetchall()
    return [{"name": n, "role": r, "disabled": d, "created_at": c.isoformat(),
             "changed_at": ch.isoformat()} for n, r, d, c, ch in rows]


def verify(conn: psycopg.Connection[Any], name: str, password: str) -> User | None:
    """The user if the password is right and the account enabled; None otherwise (same time)."""
    row = conn.execute("SELECT pw_hash, role, disabled, session_version FROM web_users "
                       "WHERE name = %s", (name,)).fetchone()
    try:
        _hasher.verify(row[0] if row else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row[2]:
        return None
    if _hasher.check_needs_rehash(row[0]):
        conn.execute("UPDATE web_users SET pw_hash = %s WHERE name = %s",
                     (_hasher.hash(password), name))
    return User(name, row[1], row[3])


def current(conn: psycopg.Connection[Any], name: str, session_version: int) -> User | None:
    """The user a session names, if it is still valid (enabled, no password change since)."""
    row = conn.execute("SELECT role, session_version FROM web_users WHERE name = %s "
                       "AND NOT disabled", (name,)).fetchone()
    if row is None or row[1] != session_version:
        return None
    return User(name, row[0], row[1])


def by_name(conn: psycopg.Connection[Any], name: str) -> User | None:
    """For the reverse proxy's header: the account of a user the proxy authenticated."""
    row = conn.execute("SELECT role, session_version FROM web_users WHERE name = %s "
                       "AND NOT disabled", (name,)).fetchone()
    return None if row is None else User(name, row[0], row[1])
