"""Accounts against a real store: secrets kept only as scrypt hashes, logins and tokens
tell who is asking, and only an admin manages them."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from outputd.errors import RequestRefused
from outputd.ops import accounts
from outputd.ops.access import ADMIN, OPERATOR, Caller, Forbidden
from outputd.store import open_store

ADMIN_CALLER = Caller.local("root")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "postgresql":
        store = open_store(request.getfixturevalue("pg_url"))
    else:
        store = open_store(f"sqlite:///{tmp_path / 'outputd.db'}")
    yield store
    store.close()


def test_a_password_is_kept_only_as_a_salted_scrypt_hash():
    one, two = accounts.hash_secret("correct horse battery"), accounts.hash_secret(
        "correct horse battery")
    assert one != two and "correct" not in one and one.startswith("scrypt$16384$8$1$")
    assert accounts.check_secret("correct horse battery", one)
    assert not accounts.check_secret("correct horse batterY", one)
    assert not accounts.check_secret("anything", "not a hash")


def test_a_login_tells_the_caller_and_a_new_password_replaces_the_old(store):
    accounts.add_user(store, ADMIN_CALLER, "ann", OPERATOR, ["acme"], "a long password 1")
    assert accounts.by_password(store, "ann", "a long password 1") == Caller(
        "ann", OPERATOR, frozenset({"acme"}))
    assert accounts.by_password(store, "ann", "a long password 2") is None
    assert accounts.by_password(store, "nobody", "a long password 1") is None
    accounts.set_password(store, ADMIN_CALLER, "ann", "a long password 2")
    assert accounts.by_password(store, "ann", "a long password 1") is None
    assert accounts.by_password(store, "ann", "a long password 2") is not None
    with pytest.raises(RequestRefused, match="at least 12 characters"):
        accounts.set_password(store, ADMIN_CALLER, "ann", "short")
    accounts.remove_user(store, ADMIN_CALLER, "ann")
    assert accounts.by_password(store, "ann", "a long password 2") is None


def test_a_token_is_shown_once_found_by_its_id_and_dead_once_revoked(store):
    token = accounts.add_token(store, ADMIN_CALLER, "mis", "submitter", ["acme"])
    assert token.startswith("odt_") and len(token) == 4 + 16 + 1 + 43
    stored = store.accounts.tokens()[0]
    assert token.split("_", 2)[2] not in stored.secret_hash  # only the hash is kept
    assert accounts.by_token(store, token) == Caller("mis", "submitter", frozenset({"acme"}))
    assert accounts.by_token(store, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert accounts.by_token(store, "Bearer nonsense") is None
    accounts.revoke_token(store, ADMIN_CALLER, "mis")
    assert accounts.by_token(store, token) is None


def test_a_server_checks_a_token_once_however_many_requests_bring_it_at_once(
        store, monkeypatch: pytest.MonkeyPatch):
    token = accounts.add_token(store, ADMIN_CALLER, "screens", "viewer", [])
    checks: list[str] = []
    real = accounts.check_secret

    def counted(secret: str, stored: str) -> bool:
        checks.append(secret)
        return real(secret, stored)

    monkeypatch.setattr(accounts, "check_secret", counted)
    server = accounts.TokenCheck(store)
    start = threading.Barrier(20)

    def ask() -> Caller | None:
        start.wait()
        return server.caller(token)

    with ThreadPoolExecutor(20) as pool:
        callers = list(pool.map(lambda _: ask(), range(20)))
    assert set(callers) == {Caller("screens", "viewer", frozenset())}
    assert len(checks) == 1
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert server.caller(wrong) is None and len(checks) == 2  # a wrong one is checked
    accounts.revoke_token(store, ADMIN_CALLER, "screens")
    assert server.caller(token) is None  # revoked: refused at once, remembered or not


def test_only_an_admin_manages_accounts_and_names_and_roles_are_checked(store):
    with pytest.raises(Forbidden, match="may not manage users and tokens"):
        accounts.add_token(store, Caller("ann", OPERATOR), "mis", "submitter", [])
    with pytest.raises(RequestRefused, match="unknown role 'boss'"):
        accounts.add_token(store, ADMIN_CALLER, "mis", "boss", [])
    with pytest.raises(RequestRefused, match="cannot be a name"):
        accounts.add_user(store, ADMIN_CALLER, "ann smith", ADMIN, [], "a long password 1")
    assert store.accounts.users() == [] and store.accounts.tokens() == []
