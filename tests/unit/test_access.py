"""Roles and scopes, keys and tokens: who may read what, decided without I/O (and the key
store on a real SQLite file)."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from projections.snapshot import Filters
from services import bootstrap
from services.access import keys
from services.access.principal import Forbidden, Principal
from services.access.tokens import BadToken, TokenVerifier
from services.settings import Settings

REP = Principal("acme", "rep", "k1", rep_id="R-1")
MANAGER = Principal("acme", "manager", "k2", team_id="T-1")
ADMIN = Principal("acme", "admin", "k3")
INGEST = Principal("acme", "ingest", "k4")


def test_a_rep_reads_only_their_own_subjects_whatever_else_they_filter_on() -> None:
    assert REP.scope(Filters()).dims == {"rep": "R-1"}
    assert REP.scope(Filters(dims={"rep": "R-1", "region": "north"})).dims == \
        {"rep": "R-1", "region": "north"}
    with pytest.raises(Forbidden) as refused:
        REP.scope(Filters(dims={"rep": "R-2"}))
    assert refused.value.field == "rep"


def test_a_manager_reads_their_team_and_names_only_its_members() -> None:
    assert MANAGER.scope(Filters()).dims == {"team": "T-1"}
    assert MANAGER.scope(Filters(dims={"rep": "R-1"}), ["R-1", "R-5"]).dims == \
        {"rep": "R-1", "team": "T-1"}
    with pytest.raises(Forbidden, match="not in your team"):
        MANAGER.scope(Filters(dims={"rep": "R-9"}), ["R-1", "R-5"])
    with pytest.raises(Forbidden) as other_team:
        MANAGER.scope(Filters(dims={"team": "T-2"}))
    assert other_team.value.field == "team"


def test_an_admin_reads_the_whole_tenant_and_ingest_reads_nothing() -> None:
    asked = Filters(dims={"team": "T-2", "rep": "R-9"})
    assert ADMIN.scope(asked) == asked
    with pytest.raises(Forbidden):
        INGEST.scope(Filters())
    with pytest.raises(Forbidden):
        INGEST.require(frozenset({"rep", "manager", "admin"}), "read figures")


def test_row_level_checks_follow_the_same_scopes() -> None:
    assert REP.may_read_rep("R-1") and not REP.may_read_rep("R-2")
    assert MANAGER.may_read_rep("R-5", "T-1") and not MANAGER.may_read_rep("R-5", "T-2")
    assert REP.may_read_owner("R-1", "T-9") and not REP.may_read_owner(None, "T-1")
    assert MANAGER.may_read_owner("R-7", "T-1") and not MANAGER.may_read_owner("R-1", "T-2")
    assert ADMIN.may_read_owner(None, None) and not INGEST.may_read_owner("R-1", "T-1")


def test_a_scoped_role_must_name_its_scope() -> None:
    with pytest.raises(ValueError, match="rep_id"):
        Principal("acme", "rep", "k")
    with pytest.raises(ValueError, match="team_id"):
        Principal("acme", "manager", "k")
    with pytest.raises(ValueError, match="role"):
        Principal("acme", "owner", "k")  # type: ignore[arg-type]


def test_a_key_is_its_id_and_a_secret_of_which_only_the_hash_is_kept() -> None:
    minted = keys.mint()
    assert keys.parse(minted.token) == (minted.id, minted.secret)
    assert keys.matches(minted.secret, keys.digest(minted.secret))
    assert not keys.matches(minted.secret + "x", keys.digest(minted.secret))
    assert minted.secret not in keys.digest(minted.secret)
    for malformed in ("", "sp_", "sp__secret", "xx_id_secret", "sp_id"):
        assert keys.parse(malformed) is None


def test_the_key_store_authenticates_lists_and_revokes_within_a_tenant(tmp_path: Path) -> None:
    ledger = bootstrap.ledger(Settings(data_dir=tmp_path))
    store = bootstrap.key_store(ledger)
    try:
        record, token = store.create("acme", "manager", team_id="T-1", name="north desk")
        _, other_tenant_token = store.create("globex", "admin")
        found = store.authenticate(token)
        assert found is not None and found.principal() == Principal(
            "acme", "manager", record.id, team_id="T-1")
        assert store.authenticate(token[:-2] + "zz") is None  # right id, wrong secret
        assert [r.id for r in store.list("acme")] == [record.id]
        assert store.revoke("globex", record.id) is None  # another tenant's key: not found
        assert store.authenticate(token) is not None
        assert store.revoke("acme", record.id).revoked_at is not None  # type: ignore[union-attr]
        assert store.authenticate(token) is None
        assert store.authenticate(other_tenant_token) is not None
        assert "digest" not in record.public() and record.digest not in str(record.public())
    finally:
        ledger.close()


def _claims(**changes: object) -> dict[str, object]:
    return {"sub": "u-1", "tenant": "acme", "role": "manager", "team_id": "T-1",
            "exp": int(time.time()) + 60, **changes}


def test_an_hs256_token_names_tenant_role_and_scope() -> None:
    verifier = TokenVerifier("HS256", "s" * 32, audience="salespulse")
    token = jwt.encode(_claims(aud="salespulse"), "s" * 32, algorithm="HS256")
    assert verifier.principal(token) == Principal("acme", "manager", "jwt:u-1", team_id="T-1")
    refusals = {
        "expired": jwt.encode(_claims(aud="salespulse", exp=int(time.time()) - 5), "s" * 32),
        "forged": jwt.encode(_claims(aud="salespulse"), "t" * 32),
        "other audience": jwt.encode(_claims(aud="elsewhere"), "s" * 32),
        "no tenant": jwt.encode({k: v for k, v in _claims(aud="salespulse").items()
                                 if k != "tenant"}, "s" * 32),
        "manager without team": jwt.encode(_claims(aud="salespulse", team_id=None), "s" * 32),
        "alg none": jwt.encode(_claims(aud="salespulse"), None, algorithm="none"),
    }
    for why, bad in refusals.items():
        with pytest.raises(BadToken):
            verifier.principal(bad)
            pytest.fail(why)


def test_an_rs256_token_is_checked_with_the_providers_public_key() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    verifier = TokenVerifier("RS256", public_pem)
    token = jwt.encode(_claims(role="rep", rep_id="R-1"), private, algorithm="RS256")
    assert verifier.principal(token).rep_id == "R-1"
    with pytest.raises(BadToken):  # an HS256 token signed with the public key as a secret
        verifier.principal(jwt.encode(_claims(), "not the key", algorithm="HS256"))
