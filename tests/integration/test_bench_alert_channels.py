"""The alert bench's channel receivers match each delivery to its transition by the key the
outbox derives from it (`Idempotency-Key`, email's `Message-ID`), not by what it says: real
senders to the real loopback receivers, no stack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from alerts.notify import CHANNEL_KINDS
from alerts.planning import idempotency_key
from bench.alert_channels import Receivers, channel_id, figures
from bench.channels import sample_message
from services.alerter.channels import RobotLimiter, SmtpConfig, send

pytestmark = pytest.mark.integration
OWNER = "R-001"


def test_each_kind_is_matched_by_its_key_and_nothing_else() -> None:
    message, recipient = sample_message("en")
    became_true = datetime.now(UTC) - timedelta(seconds=1)
    opened = {"D-1": ("t1:opened", became_true), "D-2": ("t2:opened", became_true)}

    with Receivers() as receivers:
        smtp = SmtpConfig("127.0.0.1", receivers.smtp.port, "alerts@salespulse.local",
                          starttls=False, timeout=10)

        async def deliver() -> None:
            async with httpx.AsyncClient(timeout=10) as http:
                for channel in receivers.channels():
                    # D-1's transition under the outbox's key; the same words under another
                    # recipient's key, which must not count for D-1.
                    for who in (OWNER, "someone-else"):
                        await send(channel, message, recipient, http=http, smtp=smtp,
                                   idempotency_key=idempotency_key("t1:opened", who, channel.id),
                                   wecom_limiter=RobotLimiter(100, 60.0))

        asyncio.run(deliver())
        assert {c.kind for c in receivers.channels()} == set(CHANNEL_KINDS)
        assert {c.id for c in receivers.channels()} == {channel_id(k) for k in CHANNEL_KINDS}
        receivers.smtp.wait_for(2)
        delays = receivers.delays_ms(["D-1", "D-2", "D-3"], opened.get, OWNER)
        assert receivers.all_delivered(["D-1"], opened.get, OWNER)
        assert not receivers.all_delivered(["D-1", "D-2"], opened.get, OWNER)

    assert set(delays) == set(CHANNEL_KINDS)
    for kind, values in delays.items():
        assert len(values) == 1 and values[0] >= 1000, kind  # D-1 only, from a second ago
    measured = figures(delays)
    for kind in CHANNEL_KINDS:
        assert measured[f"alert_channel_{kind}_delivered"] == 1
        assert measured[f"alert_channel_{kind}_delay_max_ms"] == delays[kind][0]
