"""The projector's decode: its quicker contract check refuses exactly what `parse_event`
refuses, with the same reasons, and a poison message is still refused with a reason."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import orjson
import pytest

from events.contract import DATA_MODELS
from events.errors import InvalidEvent
from events.parsing import check_event, parse_event
from projections.facts import Change
from services.messages import decode, decode_all, gc_paused
from services.simulate.relayed import messages

# Values that break one field or another somewhere in the contract.
ODD_VALUES: list[Any] = [None, 5, -1, 1.5, True, "", " ", " padded ", "-1", "abc", "x" * 129,
                         "1e400", "NaN", "2017-13-45", "2017-01-01", "1899-12-31T00:00:00",
                         "2017-Q5", [], ["a"], {}, {"results": 50, "process": 50}]
_SIMULATED = [orjson.loads(raw)["event"] for raw in messages(11, 120)]
_BY_TYPE = {event["type"]: event for event in reversed(_SIMULATED)}
# The two configuration events the simulator does not make.
_BY_TYPE["pipeline.configured"] = {
    "id": "cfg-1", "type": "pipeline.configured", "tenant": "default",
    "occurred_at": "2017-01-01T09:00:00+08:00",
    "data": {"stages": ["new", "won"], "win_probabilities": {"new": 0.1},
             "stall_days": {"new": 7}}}
_BY_TYPE["scoring.configured"] = {
    "id": "cfg-2", "type": "scoring.configured", "tenant": "default",
    "occurred_at": "2017-01-01T09:00:00+08:00",
    "data": {"weights": {"results": 50, "process": 30, "customer": 20}}}


def verdict(check: Any, event: Any, tenant: str) -> str | None:
    """None when accepted, else the refusal's reasons."""
    try:
        check(event, tenant=tenant)
    except InvalidEvent as exc:
        return str(exc)
    return None


def mutations(event: dict[str, Any]) -> list[dict[str, Any]]:
    """`event` with one field removed, replaced or added, in the envelope or in `data`."""
    out = []
    for place, fields in (("envelope", event), ("data", event["data"])):
        for name in [*fields, "unexpected"]:
            for value in [*ODD_VALUES, "absent"]:
                changed = copy.deepcopy(event)
                target = changed if place == "envelope" else changed["data"]
                if value == "absent":
                    target.pop(name, None)
                else:
                    target[name] = value
                out.append(changed)
    for other in DATA_MODELS:  # every event's data under every type
        out.append({**copy.deepcopy(event), "type": other})
    return out


def test_every_event_type_is_covered() -> None:
    assert set(_BY_TYPE) == set(DATA_MODELS)


def test_the_simulated_events_are_accepted() -> None:
    for event in _SIMULATED:
        assert verdict(check_event, event, event["tenant"]) is None


@pytest.mark.parametrize("event_type", sorted(DATA_MODELS))
def test_a_broken_event_is_refused_exactly_when_parse_event_refuses_it(event_type: str) -> None:
    cases = mutations(_BY_TYPE[event_type])
    refused = 0
    for event, tenant in itertools.product(cases, ("default", "other")):
        expected = verdict(parse_event, event, tenant)
        assert verdict(check_event, event, tenant) == expected, (event, tenant)
        refused += expected is not None
    assert refused > len(cases)  # the mutations do break the contract, not only the tenant


def test_a_tenant_is_compared_as_the_contract_reads_it() -> None:
    event = {**_BY_TYPE["deal.stage_changed"], "tenant": " acme "}
    for tenant in ("acme", " acme ", "default"):
        assert verdict(check_event, event, tenant) == verdict(parse_event, event, tenant)


def test_a_message_whose_event_breaks_the_contract_is_refused_with_its_reason() -> None:
    body = orjson.loads(messages(11, 30)[0])
    body["event"]["data"] = {}
    with pytest.raises(ValueError, match=r"^InvalidEvent: data\.\w+: Field required"):
        decode(orjson.dumps(body))


def test_a_message_decodes_to_its_change_with_the_event_as_published() -> None:
    raw = messages(11, 30)[5]
    body = orjson.loads(raw)
    change = decode(raw)
    assert (change.position, change.tenant, change.kind, change.key, change.version,
            change.event) == (body["position"], body["event"]["tenant"], body["kind"],
                              body["key"], body["version"], body["event"])


def test_collection_is_paused_for_a_batch_only_and_never_turned_on_by_it() -> None:
    import gc

    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # someone else's choice is left alone
    finally:
        gc.enable()


@pytest.mark.parametrize(("field", "value"), [("position", "12"), ("version", 1.5),
                                              ("kind", 7), ("event", []), ("schema", True)])
def test_a_message_field_of_the_wrong_type_is_refused_naming_the_field(
        field: str, value: object) -> None:
    body = {**orjson.loads(messages(11, 30)[0]), field: value}
    with pytest.raises(ValueError, match=rf"\$\.{field}"):
        decode(orjson.dumps(body))


def test_a_message_decodes_alike_from_its_bytes_and_from_its_dict() -> None:
    for raw in messages(11, 30):
        assert Change.from_json(raw) == Change.from_message(orjson.loads(raw))


def test_a_decoded_change_is_the_named_tuple_its_fields_make() -> None:
    for raw in messages(11, 30):
        body = orjson.loads(raw)
        change = Change.from_json(raw)
        made = Change(body["position"], body["event"]["tenant"], body["kind"], body["key"],
                      body["version"], body["event"], body["relayed_at"])
        assert type(change) is Change
        assert change == made and change._asdict() == made._asdict()


def test_a_fetch_decodes_message_by_message_as_decode_does() -> None:
    from services.signing import Signer
    from services.simulate.relayed import Relayed

    relay = Signer("the relay's key")
    good = messages(11, 30)[:20]
    body = orjson.loads(good[0])
    broken = orjson.dumps({**body, "event": {**body["event"], "data": {}}})
    fetched = [Relayed(raw, relay.headers(raw) if n % 3 else []) for n, raw in enumerate(good)]
    fetched += [Relayed(broken, []), Relayed(broken, relay.headers(broken)),
                Relayed(broken, Signer("another key").headers(broken)), Relayed(b"", []),
                Relayed(b"{", relay.headers(b"{")),
                Relayed(orjson.dumps({**body, "schema": 9}), [])]
    changes, poisoned = decode_all(fetched, relay)
    expected_changes, expected_poisoned = [], []
    for record in fetched:
        try:
            expected_changes.append(decode(record.value, stored=relay.signed(
                record.value, record.headers)))
        except ValueError as exc:
            expected_poisoned.append((record.value, str(exc)))
    assert changes == expected_changes
    assert poisoned == expected_poisoned
    assert len(poisoned) == 5  # the relay's signature on the broken event passes it
