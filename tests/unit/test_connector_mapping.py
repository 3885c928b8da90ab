"""A tenant's connector mapping: the CRM's defaults, overridden key by key; a bad mapping
is refused naming the key."""

from __future__ import annotations

import pytest

from services.connectors.mapping import DEFAULTS, MappingError, parse_mapping


def test_keys_left_out_keep_the_crms_defaults() -> None:
    mapping = parse_mapping("salesforce", {"account": 42, "team_id": "emea"})
    assert mapping.account == "42" and mapping.team_id == "emea"
    assert mapping.stages == DEFAULTS["salesforce"].stages
    assert mapping.won == ("Closed Won",)


@pytest.mark.parametrize(("raw", "field"), [
    ({"stages": {"x": "won"}}, "stages.x"),
    ({"stages": ["a"]}, "stages"),
    ({"dimensions": {"region": "Region__c"}}, "dimensions.region"),
    ({"activity_kinds": {"Call": "shout"}}, "activity_kinds.Call"),
    ({"reps_since": "last year"}, "reps_since"),
    ({"link_customers": "yes"}, "link_customers"),
    ({"won": "Closed Won"}, "won"),
    ({"secret": "x"}, "secret"),
])
def test_a_bad_mapping_is_refused_naming_the_key(raw: dict, field: str) -> None:
    with pytest.raises(MappingError) as refused:
        parse_mapping("hubspot", raw)
    assert refused.value.field == field


def test_the_public_view_holds_no_credentials() -> None:
    assert set(parse_mapping("pipedrive", {}).public()) == {
        "account", "stages", "won", "lost", "owners", "team_id", "reps_since", "default_owner",
        "dimensions", "activity_kinds", "link_customers"}
