"""Users and tokens: who may reach outputd over the network, with which role, for which
storefronts. Only hashes of their secrets are stored."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from outputd.errors import RequestRefused
from outputd.store.engine import Cursor, Engine


@dataclass(frozen=True)
class User:
    """A person who logs in on the board."""

    name: str
    role: str
    storefronts: tuple[str, ...]  # empty: every storefront
    password_hash: str
    created_at: float
    password_changed_at: float  # sessions begun before this are over


@dataclass(frozen=True)
class Token:
    """A machine's bearer token (the storefront, the MIS, a station's tablet)."""

    name: str
    role: str
    storefronts: tuple[str, ...]
    token_id: str  # the public part of the token, to find it by
    secret_hash: str
    created_at: float
    revoked_at: float | None = None


@dataclass(frozen=True)
class Session:
    """A board login: its user, its CSRF token, when it began and ends."""

    username: str
    csrf: str
    created_at: float
    expires_at: float


class NameTaken(RequestRefused):
    """A user or token of that name exists (names are the history's `by`: one each)."""


_USER = "name, role, storefronts, password_hash, created_at, password_changed_at"
_TOKEN = "name, role, storefronts, token_id, secret_hash, created_at, revoked_at"


class Accounts:
    """Users and tokens; one transaction per call."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def add_user(self, user: User) -> None:
        """Add a user; raise NameTaken if a user or token has the name."""
        with self.db.transaction() as cur:
            _insert_user(cur, user)

    def user(self, name: str) -> User | None:
        """The user of that name, or None."""
        with self.db.reader() as cur:
            row = cur.execute(f"SELECT {_USER} FROM users WHERE name = ?", (name,)).fetchone()
        return _user(row) if row else None

    def users(self) -> list[User]:
        """Every user, by name."""
        with self.db.reader() as cur:
            rows = cur.execute(f"SELECT {_USER} FROM users ORDER BY name").fetchall()
        return [_user(row) for row in rows]

    def set_password(self, name: str, password_hash: str, at: float) -> bool:
        """Replace a user's password hash (ending their sessions); False if no such user."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM sessions WHERE username = ?", (name,))
            done = cur.execute(
                "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE name = ?",
                (password_hash, at, name))
            return bool(done.rowcount)

    def remove_user(self, name: str) -> bool:
        """Remove a user and end their sessions; False if there was none."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM sessions WHERE username = ?", (name,))
            return bool(cur.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount)

    def add_token(self, token: Token) -> None:
        """Add a token; raise NameTaken if a user or token has the name."""
        with self.db.transaction() as cur:
            _check_free(cur, token.name)
            cur.execute(f"INSERT INTO tokens ({_TOKEN}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (token.name, token.role, json.dumps(list(token.storefronts)),
                         token.token_id, token.secret_hash, token.created_at, None))

    def token(self, token_id: str) -> Token | None:
        """The token with this public id (revoked or not), or None."""
        with self.db.reader() as cur:
            row = cur.execute(f"SELECT {_TOKEN} FROM tokens WHERE token_id = ?",
                              (token_id,)).fetchone()
        return _token(row) if row else None

    def tokens(self) -> list[Token]:
        """Every token, revoked ones too, by name."""
        with self.db.reader() as cur:
            rows = cur.execute(f"SELECT {_TOKEN} FROM tokens ORDER BY name").fetchall()
        return [_token(row) for row in rows]

    def revoke_token(self, name: str, at: float) -> bool:
        """Revoke a token for good; False if there is no such token not yet revoked."""
        with self.db.transaction() as cur:
            done = cur.execute(
                "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (at, name))
            return bool(done.rowcount)


    def add_session(self, id_sha256: str, session: Session) -> None:
        """Record a new session (dropping the user's sessions that have ended)."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM sessions WHERE username = ? AND expires_at < ?",
                        (session.username, session.created_at))
            cur.execute("INSERT INTO sessions (id_sha256, username, csrf, created_at,"
                        " expires_at) VALUES (?, ?, ?, ?, ?)",
                        (id_sha256, session.username, session.csrf, session.created_at,
                         session.expires_at))

    def session(self, id_sha256: str) -> Session | None:
        """The session with this id's sha256, or None."""
        with self.db.reader() as cur:
            row = cur.execute("SELECT username, csrf, created_at, expires_at FROM sessions"
                              " WHERE id_sha256 = ?", (id_sha256,)).fetchone()
        return Session(*row) if row else None

    def end_session(self, id_sha256: str) -> None:
        """End one session (logging out)."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM sessions WHERE id_sha256 = ?", (id_sha256,))

    def open_setup(self, secret_sha256: str, at: float) -> bool:
        """Record the one-time setup secret, unless a user exists; False if one does."""
        with self.db.transaction() as cur:
            if cur.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return False
            cur.execute("DELETE FROM setup")
            cur.execute("INSERT INTO setup (secret_sha256, created_at) VALUES (?, ?)",
                        (secret_sha256, at))
            return True

    def first_admin(self, secret_sha256: str, user: User) -> bool:
        """Create the first user with the setup secret, once: False if the secret is not
        the open one or a user exists already."""
        with self.db.transaction() as cur:
            if cur.execute("SELECT 1 FROM users LIMIT 1").fetchone() or not cur.execute(
                    "SELECT 1 FROM setup WHERE secret_sha256 = ?", (secret_sha256,)
            ).fetchone():
                return False
            _insert_user(cur, user)
            cur.execute("DELETE FROM setup")
            return True


def _insert_user(cur: Cursor, user: User) -> None:
    """Insert a user whose name no user or token has (else NameTaken)."""
    _check_free(cur, user.name)
    cur.execute(f"INSERT INTO users ({_USER}) VALUES (?, ?, ?, ?, ?, ?)",
                (user.name, user.role, json.dumps(list(user.storefronts)),
                 user.password_hash, user.created_at, user.password_changed_at))


def _check_free(cur: Cursor, name: str) -> None:
    for table, what in (("users", "a user"), ("tokens", "a token")):
        if cur.execute(f"SELECT 1 FROM {table} WHERE name = ?", (name,)).fetchone():
            raise NameTaken(f"there is already {what} named {name}")


def _user(row: Sequence[Any]) -> User:
    return User(row[0], row[1], tuple(json.loads(row[2])), row[3], row[4], row[5])


def _token(row: Sequence[Any]) -> Token:
    return Token(row[0], row[1], tuple(json.loads(row[2])), row[3], row[4], row[5], row[6])
