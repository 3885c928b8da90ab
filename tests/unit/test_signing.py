"""The relay's signature: what it proves, and what the projector does with and without it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import orjson
import pytest

from services.messages import decode_all
from services.signing import HEADER, Signer
from services.simulate.relayed import messages


@dataclass
class Record:
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


RELAY = Signer("the relay's key")


def off_contract() -> bytes:
    """A relayed message whose event the contract refuses (a negative payment)."""
    body = orjson.loads(messages(11, 30)[0])
    body["event"] = {**body["event"], "type": "payment.received",
                     "data": {"payment_id": "P-1", "order_id": "O-1", "amount": "-5"}}
    return orjson.dumps(body)


def test_a_signature_holds_for_the_same_key_and_the_exact_value_only() -> None:
    value = messages(11, 30)[0]
    headers = RELAY.headers(value)
    assert RELAY.signed(value, headers)
    assert not RELAY.signed(value + b" ", headers)
    assert not Signer("another key").signed(value, headers)
    assert not RELAY.signed(value, [])
    assert not RELAY.signed(value, [(HEADER, b"\x00" * 16)])
    assert not RELAY.signed(value, [(HEADER, None)])  # type: ignore[list-item]
    assert not RELAY.signed(value, [(HEADER, "text")])  # type: ignore[list-item]


def test_the_signature_is_the_keyed_blake2b_of_the_value_so_relays_of_any_release_agree(
) -> None:
    # The signer hashes the key once and copies that state per message: the bytes must stay
    # those of BLAKE2b keyed with SHA-256 of the secret, or a relay and a projector of
    # different releases would dead-letter every message between them.
    key = hashlib.sha256(b"the relay's key").digest()
    for value in (b"", *messages(11, 30)[:50]):
        assert RELAY.sign(value) == hashlib.blake2b(value, key=key, digest_size=16).digest()
    assert RELAY.sign(b"a") != RELAY.sign(b"b")  # no state carried from one message over


def test_an_unsigned_message_is_checked_against_the_contract() -> None:
    changes, poisoned = decode_all([Record(off_contract())], RELAY)
    assert not changes
    assert "amount" in poisoned[0][1]


def test_without_a_key_even_a_signed_message_is_checked() -> None:
    raw = off_contract()
    _, poisoned = decode_all([Record(raw, RELAY.headers(raw))], None)
    assert len(poisoned) == 1


@pytest.mark.parametrize("signer", [Signer("another key"), RELAY])
def test_a_message_signed_by_another_key_or_altered_after_signing_is_checked(
        signer: Signer) -> None:
    raw = off_contract()
    signed_original = signer.headers(raw.replace(b'"-5"', b'"5"'))
    _, poisoned = decode_all([Record(raw, signed_original)], RELAY)
    assert len(poisoned) == 1


def test_a_message_the_relay_signed_is_folded_as_stored_without_a_second_check() -> None:
    # The ledger checked it before storing it; the signature proves it is that event.
    raw = off_contract()
    changes, poisoned = decode_all([Record(raw, RELAY.headers(raw))], RELAY)
    assert not poisoned
    assert changes[0].event["data"]["amount"] == "-5"


def test_a_signed_message_that_is_no_relayed_message_is_still_refused() -> None:
    raw = b'{"valid": "json", "wrong": "shape"}'
    _, poisoned = decode_all([Record(raw, RELAY.headers(raw))], RELAY)
    assert len(poisoned) == 1
