"""One-tap links: what they grant, and that a forged, altered or expired one grants nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from services.alerter.links import LinkInvalid, LinkSigner

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
signer = LinkSigner(b"k" * 32, "https://sp.example/", timedelta(hours=72))


def test_a_link_grants_its_action_on_its_alert_to_its_recipient() -> None:
    grant = signer.check(signer.token("acme", "a1", "r7", "snooze", NOW), NOW)
    assert (grant.tenant, grant.alert_id, grant.recipient, grant.action) == (
        "acme", "a1", "r7", "snooze")
    assert grant.expires_at == NOW + timedelta(hours=72)


def test_each_link_is_unique_so_it_can_be_spent_once() -> None:
    first = signer.check(signer.token("acme", "a1", "r7", "acknowledge", NOW), NOW)
    second = signer.check(signer.token("acme", "a1", "r7", "acknowledge", NOW), NOW)
    assert first.nonce != second.nonce


def test_an_expired_link_is_refused() -> None:
    token = signer.token("acme", "a1", "r7", "acknowledge", NOW)
    with pytest.raises(LinkInvalid, match="expired"):
        signer.check(token, NOW + timedelta(hours=72))


def test_a_link_signed_with_another_key_or_altered_is_refused() -> None:
    other = LinkSigner(b"x" * 32, "https://sp.example", timedelta(hours=1))
    token = signer.token("acme", "a1", "r7", "acknowledge", NOW)
    with pytest.raises(LinkInvalid):
        other.check(token, NOW)
    head, tag = token.split(".")
    with pytest.raises(LinkInvalid):
        signer.check(head[:-2] + ("AA" if head[-2:] != "AA" else "BB") + "." + tag, NOW)
    with pytest.raises(LinkInvalid):
        signer.check("garbage", NOW)


def test_links_lead_to_the_view_and_the_one_tap_actions() -> None:
    links = signer.links("acme", "a1", "r7", "/dashboard#deal=d9", NOW)
    assert links.view == "https://sp.example/dashboard#deal=d9"
    assert links.acknowledge is not None and links.snooze is not None
    token = unquote(links.acknowledge.rsplit("/", 1)[1])
    assert signer.check(token, NOW).action == "acknowledge"
