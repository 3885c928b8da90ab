"""Each vendor's payload as its documentation gives it, from one message in each language:
WeCom, DingTalk, Feishu, Slack, Teams, email and the signed webhook's JSON."""

from __future__ import annotations

from dataclasses import replace

import pytest

from alerts.formats import dingtalk, email, feishu, slack, teams, webhook_body, wecom
from alerts.formats.text import MAX_ITEMS
from alerts.messages import compose, compose_digest
from alerts.notify import Links, Message
from tests.unit.test_alert_messages import EN, LINKS, ZH, stalled
from tests.unit.test_alert_rules import TZ


@pytest.fixture(params=["en", "zh-CN"])
def message(request: pytest.FixtureRequest) -> Message:
    return compose(stalled(), EN if request.param == "en" else ZH, LINKS, tz=TZ)


def labels(m: Message) -> list[str]:
    return ["Open in dashboard", "Acknowledge", "Snooze"] if m.language == "en" else \
        ["在看板中查看", "确认", "暂缓"]


def test_wecom_is_markdown_with_the_links_or_text_when_someone_is_mentioned(
        message: Message) -> None:
    quiet = replace(message, mentions=[])
    body = wecom(quiet)
    assert body["msgtype"] == "markdown" and set(body) == {"msgtype", "markdown"}
    content = body["markdown"]["content"]
    assert content.startswith(f"**{quiet.title}**") and quiet.summary in content
    for label, url in zip(labels(quiet), (LINKS.view, LINKS.acknowledge, LINKS.snooze),
                          strict=True):
        assert f"[{label}]({url})" in content
    loud = wecom(replace(message, mentions=["13800000000"]))
    assert loud["msgtype"] == "text"
    assert loud["text"]["mentioned_mobile_list"] == ["13800000000"]
    assert loud["text"]["content"].startswith(message.title)


def test_wecom_keeps_within_its_documented_byte_limits() -> None:
    ts = [stalled()] * 60
    digest = compose_digest(ts, ZH, lambda t: LINKS)
    assert len(wecom(digest)["markdown"]["content"].encode()) <= 4096
    texty = wecom(replace(digest, mentions=["13800000000"]))
    assert len(texty["text"]["content"].encode()) <= 2048


def test_dingtalk_is_markdown_that_names_each_mentioned_mobile(message: Message) -> None:
    body = dingtalk(replace(message, mentions=["13800000000"]))
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == message.title
    assert body["markdown"]["text"].rstrip().endswith("@13800000000")
    assert body["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
    assert f"]({LINKS.acknowledge})" in body["markdown"]["text"]


def test_feishu_is_an_interactive_card_signed_in_the_body(message: Message) -> None:
    body = feishu(message, timestamp="1599360473", sign="c2lnbg==")
    assert (body["timestamp"], body["sign"], body["msg_type"]) == ("1599360473", "c2lnbg==",
                                                                   "interactive")
    card = body["card"]
    assert card["header"]["title"] == {"tag": "plain_text", "content": message.title}
    assert card["header"]["template"] == "orange"
    action = card["elements"][-1]
    assert action["tag"] == "action"
    assert [(b["text"]["content"], b["url"]) for b in action["actions"]] == list(
        zip(labels(message), (LINKS.view, LINKS.acknowledge, LINKS.snooze), strict=True))
    assert "timestamp" not in feishu(message)  # a bot without a secret: no signature


def test_slack_has_blocks_and_a_text_fallback(message: Message) -> None:
    body = slack(message)
    assert body["text"] == f"{message.title}: {message.summary}"
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "section", "actions"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": message.title,
                                         "emoji": True}
    buttons = body["blocks"][-1]["elements"]
    assert [b["url"] for b in buttons] == [LINKS.view, LINKS.acknowledge, LINKS.snooze]
    assert buttons[0]["style"] == "primary"


def test_slack_escapes_its_control_characters() -> None:
    m = replace(compose(stalled(), EN, LINKS), summary="a <b> & c")
    assert slack(m)["blocks"][1]["text"]["text"] == "a &lt;b&gt; &amp; c"


def test_teams_is_an_adaptive_card_in_a_message_attachment(message: Message) -> None:
    body = teams(message)
    assert body["type"] == "message" and len(body["attachments"]) == 1
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    facts = card["body"][2]["facts"]
    sep = "：" if message.language == "zh-CN" else ": "
    assert [f"{f['title']}{sep}{f['value']}" for f in facts] == message.evidence
    assert [a["url"] for a in card["actions"]] == [LINKS.view, LINKS.acknowledge, LINKS.snooze]
    assert all(a["type"] == "Action.OpenUrl" for a in card["actions"])


def test_email_has_a_subject_a_text_and_an_html_part(message: Message) -> None:
    content = email(replace(message, summary=message.summary + " <script>"))
    assert content.subject == message.title
    assert message.summary in content.text and LINKS.acknowledge in content.text
    assert f'<html lang="{message.language}">' in content.html
    assert "&lt;script&gt;" in content.html and "<script>" not in content.html
    assert f'href="{LINKS.snooze}"' in content.html


def test_a_digest_shows_its_entries_up_to_a_limit_and_counts_the_rest() -> None:
    ts = [stalled()] * (MAX_ITEMS + 5)
    digest = compose_digest(ts, EN, lambda t: Links(view="https://sp.example/x"))
    assert "and 5 more" in dingtalk(digest)["markdown"]["text"]
    card = teams(digest)["attachments"][0]["content"]
    assert card["body"][-1]["text"] == "and 5 more"
    assert email(digest).text.count("https://sp.example/x") == MAX_ITEMS + 5 + 1


def test_the_webhook_body_is_the_message_with_its_links_and_items(message: Message) -> None:
    body = webhook_body(message)
    assert body["title"] == message.title and body["evidence"] == message.evidence
    assert body["links"] == {"view": LINKS.view, "acknowledge": LINKS.acknowledge,
                             "snooze": LINKS.snooze}
    assert body["items"] == []


def test_names_never_turn_into_markdown_nor_show_a_backslash() -> None:
    m = replace(compose(stalled(), EN, LINKS), title="*VIP* [East] D_17", mentions=[])
    content = wecom(m)["markdown"]["content"]
    assert content.startswith("**＊VIP＊ ［East］ D_17**") and "\\" not in content
