"""Every channel sender against a real receiver on loopback: the payload's shape, the
signature verified with the vendor's documented algorithm (written out here, apart from
the sender's), the vendors' error answers as the right `DeliveryError`, and WeCom's
per-robot limit making sends wait rather than be refused. Email through a real aiosmtpd."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from alerts.messages import compose
from alerts.notify import Channel, Message, Recipient
from bench.loopback import HttpReceiver, SmtpReceiver
from services.alerter.channels import DeliveryError, RobotLimiter, SmtpConfig, send
from services.broker import free_port
from tests.unit.test_alert_messages import EN, LINKS, ZH, stalled
from tests.unit.test_alert_rules import TZ

pytestmark = pytest.mark.integration
SECRET = "SEC0123456789abcdef-a-robot-secret"
OK_ERRCODE = (200, b'{"errcode":0,"errmsg":"ok"}')
OK_FEISHU = (200, b'{"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}')


def message(recipient: Recipient = EN) -> Message:
    return compose(stalled(), recipient, LINKS, tz=TZ)


async def deliver(channel: Channel, recipient: Recipient = EN, key: str = "t1:opened",
                  **kwargs: Any) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        await send(channel, message(recipient), recipient, http=http, idempotency_key=key,
                   **kwargs)


async def refusal(channel: Channel, **kwargs: Any) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await deliver(channel, **kwargs)
    return caught.value


def as_json(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"))


# --- WeCom -----------------------------------------------------------------------------------


async def test_wecom_posts_markdown_to_the_key_url_and_text_when_mentioning() -> None:
    with HttpReceiver(OK_ERRCODE) as r:
        robot = Channel("c1", "wecom", f"{r.url}/cgi-bin/webhook/send?key=robot-key")
        limiter = RobotLimiter(20, 60.0)
        await deliver(robot, ZH, wecom_limiter=limiter)
        await deliver(robot, EN, key="t1:opened:en", wecom_limiter=limiter)
        first, second = r.wait_for(2)
    assert parse_qs(urlsplit(first.path).query) == {"key": ["robot-key"]}
    assert first.headers["idempotency-key"] == "t1:opened"
    body = as_json(first.body)
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["content"].startswith("**新告警 · 商机停滞 · 商机 D1**")
    mention = as_json(second.body)
    assert mention["msgtype"] == "text"
    assert mention["text"]["mentioned_mobile_list"] == ["13800000000"]


@pytest.mark.parametrize(("errcode", "retryable"), [(45009, True), (-1, True),
                                                    (93000, False), (40008, False)])
async def test_wecom_errcodes_in_a_200_answer_fail_the_delivery(errcode: int,
                                                                retryable: bool) -> None:
    answer = (200, json.dumps({"errcode": errcode, "errmsg": "refused"}).encode())
    with HttpReceiver(answer) as r:
        error = await refusal(Channel("c1", "wecom", f"{r.url}/send?key=k"),
                              wecom_limiter=RobotLimiter(20, 60.0))
    assert error.retryable is retryable and str(errcode) in error.reason


async def test_wecom_limiter_makes_sends_past_the_robots_limit_wait_not_fail() -> None:
    limiter = RobotLimiter(3, 0.3)  # WeCom's 20 a minute, scaled down
    with HttpReceiver(OK_ERRCODE) as r:
        robot = Channel("c1", "wecom", f"{r.url}/send?key=busy")
        other = Channel("c2", "wecom", f"{r.url}/send?key=idle")
        async with httpx.AsyncClient(timeout=10) as http:
            sends = [send(robot, message(), EN, http=http, idempotency_key=f"k{i}",
                          wecom_limiter=limiter) for i in range(7)]
            await asyncio.gather(*sends)
            busy_waits = limiter.waits
            await send(other, message(), EN, http=http, idempotency_key="other",
                       wecom_limiter=limiter)
        got = r.wait_for(8)
        assert len(r.received) == 8  # each once: no refusal, no retry
    assert sorted(g.headers["idempotency-key"] for g in got) == sorted(
        [f"k{i}" for i in range(7)] + ["other"])
    # Seven through a limit of three: the 4th and the 7th wait at least (the others may
    # too, for the few microseconds between the first three); the other robot never.
    assert 2 <= busy_waits <= 4 and limiter.waits == busy_waits


# --- DingTalk ----------------------------------------------------------------------------


def dingtalk_expected_sign(secret: str, timestamp: str) -> str:
    """DingTalk's documented Python example: HmacSHA256 over "timestamp\\nsecret", base64."""
    string_to_sign = f"{timestamp}\n{secret}".encode()
    code = hmac.new(secret.encode("utf-8"), string_to_sign, digestmod=hashlib.sha256).digest()
    return base64.b64encode(code).decode()


async def test_dingtalk_signs_with_timestamp_ms_and_sign_in_the_query() -> None:
    with HttpReceiver(OK_ERRCODE) as r:
        before = int(time.time() * 1000)
        await deliver(Channel("c1", "dingtalk", f"{r.url}/robot/send?access_token=tok",
                              secret=SECRET))
        got, = r.wait_for(1)
    query = parse_qs(urlsplit(got.path).query)
    assert query["access_token"] == ["tok"]
    timestamp = query["timestamp"][0]
    assert len(timestamp) == 13 and before <= int(timestamp) <= int(time.time() * 1000)
    assert query["sign"] == [dingtalk_expected_sign(SECRET, timestamp)]  # decoded once
    assert "%" in urlsplit(got.path).query.split("sign=")[1]  # sent URL-encoded (+, /, =)
    body = as_json(got.body)
    assert body["msgtype"] == "markdown" and body["at"]["atMobiles"] == ["13800000000"]
    assert "@13800000000" in body["markdown"]["text"]


@pytest.mark.parametrize(("errcode", "retryable"), [(130101, True), (-1, True),
                                                    (310000, False), (300001, False)])
async def test_dingtalk_errcodes_fail_the_delivery(errcode: int, retryable: bool) -> None:
    answer = (200, json.dumps({"errcode": errcode, "errmsg": "keywords not in content"}).encode())
    with HttpReceiver(answer) as r:
        error = await refusal(Channel("c1", "dingtalk", f"{r.url}/robot/send?access_token=t",
                                      secret=SECRET))
    assert error.retryable is retryable


# --- Feishu ------------------------------------------------------------------------------


def feishu_expected_sign(secret: str, timestamp: str) -> str:
    """Feishu's documented Python example: the key is "timestamp\\nsecret", the message
    empty."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", digestmod=hashlib.sha256).digest()).decode()


async def test_feishu_posts_a_card_signed_in_the_body() -> None:
    with HttpReceiver(OK_FEISHU) as r:
        before = int(time.time())
        await deliver(Channel("c1", "feishu", f"{r.url}/open-apis/bot/v2/hook/abc",
                              secret=SECRET), ZH)
        got, = r.wait_for(1)
    body = as_json(got.body)
    timestamp = body["timestamp"]
    assert len(timestamp) == 10 and before <= int(timestamp) <= int(time.time())
    assert body["sign"] == feishu_expected_sign(SECRET, timestamp)
    assert body["msg_type"] == "interactive"
    assert body["card"]["header"]["title"]["content"] == "新告警 · 商机停滞 · 商机 D1"


@pytest.mark.parametrize(("code", "retryable"), [(11232, True), (19021, False),
                                                 (19024, False), (9499, False)])
async def test_feishu_codes_fail_the_delivery(code: int, retryable: bool) -> None:
    answer = (200, json.dumps({"code": code, "data": {}, "msg": "sign match fail"}).encode())
    with HttpReceiver(answer) as r:
        error = await refusal(Channel("c1", "feishu", f"{r.url}/hook/x", secret=SECRET))
    assert error.retryable is retryable and str(code) in error.reason


# --- Slack, Teams ------------------------------------------------------------------------


async def test_slack_posts_block_kit_with_a_text_fallback() -> None:
    with HttpReceiver((200, b"ok")) as r:
        await deliver(Channel("c1", "slack", f"{r.url}/services/T0/B0/x"))
        got, = r.wait_for(1)
    body = as_json(got.body)
    assert body["text"].startswith("New alert · Deal stalled · Deal D1: ")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "actions"]


@pytest.mark.parametrize(("status", "reply", "retryable"), [
    (404, b"channel_not_found", False), (400, b"invalid_payload", False),
    (410, b"channel_is_archived", False), (429, b"rate_limited", True), (500, b"", True)])
async def test_slack_http_errors_fail_the_delivery(status: int, reply: bytes,
                                                   retryable: bool) -> None:
    with HttpReceiver((status, reply)) as r:
        error = await refusal(Channel("c1", "slack", f"{r.url}/services/x"))
    assert error.retryable is retryable and str(status) in error.reason


async def test_a_rate_limit_answer_passes_on_how_long_to_wait() -> None:
    with HttpReceiver((429, b"rate_limited")) as r:
        r.headers["Retry-After"] = "7"
        error = await refusal(Channel("c1", "slack", f"{r.url}/services/x"))
    assert (error.retryable, error.retry_after) == (True, 7.0)


async def test_teams_posts_an_adaptive_card_to_the_workflow() -> None:
    with HttpReceiver((202, b"")) as r:
        await deliver(Channel("c1", "teams", f"{r.url}/workflows/abc/triggers/manual/run"))
        got, = r.wait_for(1)
    body = as_json(got.body)
    assert body["type"] == "message"
    card = body["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard" and card["content"]["version"] == "1.4"


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (429, True), (503, True)])
async def test_teams_http_errors_fail_the_delivery(status: int, retryable: bool) -> None:
    with HttpReceiver((status, b'{"error":{"code":"x"}}')) as r:
        error = await refusal(Channel("c1", "teams", f"{r.url}/workflows/x"))
    assert error.retryable is retryable


# --- the signed webhook, transport failures ------------------------------------------------


async def test_the_signed_webhook_carries_the_salespulse_signature() -> None:
    with HttpReceiver((204, b"")) as r:
        await deliver(Channel("c1", "webhook", f"{r.url}/hook", secret=SECRET))
        got, = r.wait_for(1)
    timestamp = got.headers["x-salespulse-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + got.body,
                        hashlib.sha256).hexdigest()
    assert got.headers["x-salespulse-signature"] == f"sha256={expected}"
    assert got.headers["idempotency-key"] == "t1:opened"
    assert as_json(got.body)["links"]["acknowledge"] == LINKS.acknowledge


async def test_a_webhook_channel_without_a_secret_is_refused_before_sending() -> None:
    with HttpReceiver() as r:
        error = await refusal(Channel("c1", "webhook", f"{r.url}/hook"))
        assert r.received == []
    assert error.retryable is False


async def test_an_unreachable_receiver_or_an_unreadable_answer_is_worth_retrying() -> None:
    closed = Channel("c1", "slack", f"http://127.0.0.1:{free_port()}/x")
    assert (await refusal(closed)).retryable is True
    with HttpReceiver((200, b"<html>proxy</html>")) as r:
        error = await refusal(Channel("c1", "dingtalk", f"{r.url}/robot/send?access_token=t"))
    assert error.retryable is True


# --- email -------------------------------------------------------------------------------


def smtp(port: int) -> SmtpConfig:
    return SmtpConfig("127.0.0.1", port, "alerts@salespulse.local", starttls=False, timeout=10)


@pytest.mark.parametrize("recipient", [EN, ZH], ids=["en", "zh-CN"])
async def test_email_is_multipart_alternative_text_and_html_to_the_recipient(
        recipient: Recipient) -> None:
    with SmtpReceiver() as server:
        await deliver(Channel("c1", "email", ""), recipient, smtp=smtp(server.port))
        await deliver(Channel("c1", "email", ""), recipient, smtp=smtp(server.port))
        first, again = server.wait_for(2)
    expected = message(recipient)
    mail = first.message
    assert first.recipients == ["han@example.com"]
    assert mail["Subject"] == expected.title and mail["Content-Language"] == recipient.language
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert expected.summary in text.get_content()
    assert f'lang="{recipient.language}"' in html.get_content()
    assert mail["Message-ID"] == again.message["Message-ID"]  # one key, one Message-ID


async def test_email_to_the_channels_addresses_and_smtp_refusals() -> None:
    with SmtpReceiver() as server:
        team = Channel("c1", "email", "sales@example.com, boss@example.com")
        await deliver(team, smtp=smtp(server.port))
        got, = server.wait_for(1)
        assert sorted(got.recipients) == ["boss@example.com", "sales@example.com"]
        server.handler.refuse_data.append("451 4.3.0 try again later")
        assert (await refusal(team, smtp=smtp(server.port))).retryable is True
        server.handler.refuse_rcpt["nobody@example.com"] = "550 5.1.1 no such user"
        gone = Channel("c2", "email", "nobody@example.com")
        assert (await refusal(gone, smtp=smtp(server.port))).retryable is False
    nowhere = Recipient("R9", "No Mail")
    assert (await refusal(Channel("c3", "email", ""), recipient=nowhere,
                          smtp=smtp(server.port))).retryable is False
    assert (await refusal(team, smtp=smtp(free_port()))).retryable is True  # no server


async def test_email_asked_to_upgrade_with_starttls_by_a_server_without_it_is_final() -> None:
    with SmtpReceiver() as server:
        config = replace(smtp(server.port), starttls=True)
        error = await refusal(Channel("c1", "email", "sales@example.com"), smtp=config)
        assert server.mails == []
    assert error.retryable is False and "STARTTLS" in error.reason
