"""Users and tokens (DESIGN §11): adding, listing and removing them (admins only), and
telling who a password or a token belongs to.

Secrets are kept as scrypt hashes (the standard library's, with a random salt each);
a token is `odt_<id>_<secret>`: the id finds it, the secret is checked against its hash,
and it is shown once, when it is made.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any

from outputd.errors import RequestRefused
from outputd.model import iso
from outputd.ops.access import ROLES, Caller, Forbidden
from outputd.store import Store
from outputd.store.accounts import Session, Token, User

MIN_PASSWORD = 12
# scrypt's cost: 16 MiB and about 30 ms a check here (OWASP's minimum for scrypt).
_N, _R, _P = 2**14, 8, 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_TOKEN = re.compile(r"odt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


def hash_secret(secret: str) -> str:
    """`scrypt$N$r$p$salt$hash` of `secret`, with a new random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32,
                            maxmem=64 << 20)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def check_secret(secret: str, stored: str) -> bool:
    """Whether `secret` is the one `stored` is the hash of (in constant time)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        found = hashlib.scrypt(secret.encode(), salt=_unb64(salt), n=int(n), r=int(r),
                               p=int(p), dklen=32, maxmem=64 << 20)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, _unb64(digest))


@functools.cache
def _nobody() -> str:
    """A hash to check against when there is no such user."""
    return hash_secret(secrets.token_hex(16))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _checked(name: str, role: str, storefronts: Iterable[str]) -> tuple[str, ...]:
    if not _NAME.fullmatch(name):
        raise RequestRefused(f"{name!r} cannot be a name: use up to 64 letters, digits and "
                             ". _ @ -, starting with a letter or digit")
    if role not in ROLES:
        raise RequestRefused(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    shops = tuple(sorted(set(storefronts)))
    for shop in shops:
        if not _NAME.fullmatch(shop):
            raise RequestRefused(f"{shop!r} is not a storefront id")
    return shops


def _password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise RequestRefused(f"a password has at least {MIN_PASSWORD} characters")
    return hash_secret(password)


def add_user(store: Store, caller: Caller, name: str, role: str, storefronts: Iterable[str],
             password: str) -> User:
    """Add a user who logs in with `password`, limited to `storefronts` (none: all)."""
    caller.require("accounts")
    shops = _checked(name, role, storefronts)
    now = time.time()
    user = User(name, role, shops, _password(password), now, now)
    store.accounts.add_user(user)
    return user


def set_password(store: Store, caller: Caller, name: str, password: str) -> None:
    """Give a user a new password; their sessions end."""
    caller.require("accounts")
    if not store.accounts.set_password(name, _password(password), time.time()):
        raise RequestRefused(f"there is no user {name}")


def remove_user(store: Store, caller: Caller, name: str) -> None:
    """Remove a user; their sessions end."""
    caller.require("accounts")
    if not store.accounts.remove_user(name):
        raise RequestRefused(f"there is no user {name}")


def add_token(store: Store, caller: Caller, name: str, role: str,
              storefronts: Iterable[str]) -> str:
    """Make a token for a machine; returns it (the only time it is shown)."""
    caller.require("accounts")
    shops = _checked(name, role, storefronts)
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    store.accounts.add_token(Token(name, role, shops, token_id, hash_secret(secret),
                                   time.time()))
    return f"odt_{token_id}_{secret}"


def revoke_token(store: Store, caller: Caller, name: str) -> None:
    """Revoke a token for good."""
    caller.require("accounts")
    if not store.accounts.revoke_token(name, time.time()):
        raise RequestRefused(f"there is no token {name} that is not revoked already")


def listing(store: Store, caller: Caller) -> dict[str, list[dict[str, Any]]]:
    """Users and tokens as `user list --json` and `token list --json` show them (no
    secret, no hash)."""
    caller.require("accounts")
    return {
        "users": [{"name": u.name, "role": u.role, "storefronts": list(u.storefronts),
                   "created_at": iso(u.created_at),
                   "password_changed_at": iso(u.password_changed_at)}
                  for u in store.accounts.users()],
        "tokens": [{"name": t.name, "role": t.role, "storefronts": list(t.storefronts),
                    "created_at": iso(t.created_at), "revoked_at": iso(t.revoked_at)}
                   for t in store.accounts.tokens()],
    }


def by_password(store: Store, name: str, password: str) -> Caller | None:
    """The caller a name and password log in as, or None (a wrong name costs as much
    time as a wrong password)."""
    user = store.accounts.user(name)
    if user is None:
        check_secret(password, _nobody())
        return None
    if not check_secret(password, user.password_hash):
        return None
    return Caller(user.name, user.role, frozenset(user.storefronts))


def _live_token(store: Store, token: str) -> tuple[Token, str] | None:
    """The stored, unrevoked token a bearer token names, with its secret part."""
    found = _TOKEN.fullmatch(token)
    if found is None:
        return None
    record = store.accounts.token(found.group(1))
    if record is None or record.revoked_at is not None:
        return None
    return record, found.group(2)


def _token_caller(record: Token) -> Caller:
    return Caller(record.name, record.role, frozenset(record.storefronts))


def by_token(store: Store, token: str) -> Caller | None:
    """The caller a bearer token stands for, or None (unknown, wrong or revoked)."""
    live = _live_token(store, token)
    if live is None or not check_secret(live[1], live[0].secret_hash):
        return None
    return _token_caller(live[0])


class TokenCheck:
    """`by_token` for a server: a token's scrypt check is done once, then remembered
    (by the token's sha256) for as long as its stored hash is the same and it is not
    revoked, which is read from the store on every request."""

    def __init__(self, store: Store, size: int = 1024) -> None:
        self.store = store
        self.size = size
        self._known: dict[str, tuple[str, str]] = {}  # sha256 of token → (id, hash)
        self._checking: dict[str, threading.Lock] = {}  # a token being checked now
        self._lock = threading.Lock()

    def caller(self, token: str) -> Caller | None:
        """Who the token stands for, or None. Requests that bring the same new token at
        once wait for one check (20 clients starting together cost one scrypt, not 20)."""
        live = _live_token(self.store, token)
        if live is None:
            return None
        record, secret = live
        key = hashlib.sha256(token.encode()).hexdigest()
        wanted = (record.token_id, record.secret_hash)
        with self._lock:
            if self._known.get(key) == wanted:
                return _token_caller(record)
            checking = self._checking.setdefault(key, threading.Lock())
        with checking:
            with self._lock:
                if self._known.get(key) == wanted:  # checked while this one waited
                    return _token_caller(record)
            good = check_secret(secret, record.secret_hash)
            with self._lock:
                self._checking.pop(key, None)
                if good:
                    if len(self._known) >= self.size:
                        self._known.clear()
                    self._known[key] = wanted
        return _token_caller(record) if good else None


# -- board sessions and the first admin ------------------------------------------


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def open_setup(store: Store) -> str | None:
    """A new one-time secret for the setup link that creates the first admin, or None
    when a user exists (no link then)."""
    secret = secrets.token_urlsafe(32)
    return secret if store.accounts.open_setup(_sha(secret), time.time()) else None


def first_admin(store: Store, secret: str, name: str, password: str) -> User:
    """Create the first admin with the setup link's secret; it works once."""
    _checked(name, "admin", ())
    now = time.time()
    user = User(name, "admin", (), _password(password), now, now)
    if not store.accounts.first_admin(_sha(secret), user):
        raise Forbidden("this setup link has been used, or is not the current one")
    return user


def login(store: Store, name: str, password: str, hours: float) -> tuple[str, str] | None:
    """A new session for a right name and password: (its id, for the cookie, and its
    CSRF token); None otherwise. Only the id's sha256 is stored."""
    if by_password(store, name, password) is None:
        return None
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = time.time()
    store.accounts.add_session(_sha(session_id), Session(name, csrf, now, now + hours * 3600))
    return session_id, csrf


def by_session(store: Store, session_id: str) -> tuple[Caller, str] | None:
    """The caller a session cookie stands for and the session's CSRF token, or None
    (unknown, ended, expired, or older than its user's password)."""
    found = store.accounts.session(_sha(session_id))
    if found is None or found.expires_at < time.time():
        return None
    user = store.accounts.user(found.username)
    if user is None or user.password_changed_at > found.created_at:
        return None
    return Caller(user.name, user.role, frozenset(user.storefronts)), found.csrf


def logout(store: Store, session_id: str) -> None:
    """End the session."""
    store.accounts.end_session(_sha(session_id))
