"""The Chinese work chats' bots: WeCom group robot, DingTalk custom robot, Feishu/Lark
custom bot, each as its documentation gives the request body. Pure: signatures are
computed by the senders and passed in."""

from __future__ import annotations

from typing import Any

from alerts.formats.text import (
    MAX_ITEMS,
    buttons,
    clip,
    markdown_lines,
    md_escape,
    more,
    plain_lines,
)
from alerts.notify import Message

# WeCom documents `markdown.content` up to 4096 bytes and `text.content` up to 2048 (UTF-8).
WECOM_MARKDOWN_BYTES = 4096
WECOM_TEXT_BYTES = 2048
DINGTALK_TEXT_BYTES = 18_000  # the robot refuses bodies past 20,000 bytes; room for the rest


def wecom(message: Message) -> dict[str, Any]:
    """`msgtype: markdown`; with mentions, `msgtype: text`, because only a text message
    @-mentions by mobile number (`mentioned_mobile_list`)."""
    if message.mentions:
        return {"msgtype": "text",
                "text": {"content": clip("\n".join(plain_lines(message)), WECOM_TEXT_BYTES),
                         "mentioned_mobile_list": list(message.mentions)}}
    return {"msgtype": "markdown",
            "markdown": {"content": clip("\n".join(markdown_lines(message)),
                                         WECOM_MARKDOWN_BYTES)}}


def dingtalk(message: Message) -> dict[str, Any]:
    """`msgtype: markdown` with `at.atMobiles`; DingTalk shows a mention only when the text
    also names `@<mobile>`."""
    at_line = " ".join(f"@{mobile}" for mobile in message.mentions)
    text = "\n".join(markdown_lines(message))
    text = clip(text, DINGTALK_TEXT_BYTES) + (f"\n\n{at_line}" if at_line else "")
    return {"msgtype": "markdown",
            "markdown": {"title": message.title, "text": text},
            "at": {"atMobiles": list(message.mentions), "isAtAll": False}}


_FEISHU_TEMPLATE = {"high": "red", "medium": "orange", "low": "blue"}


def feishu(message: Message, *, timestamp: str | None = None,
           sign: str | None = None) -> dict[str, Any]:
    """`msg_type: interactive`: a card with a coloured header, the summary, the evidence as
    fields, the digest's entries and the link buttons; `timestamp` and `sign` in the body
    when the bot has a signing secret."""
    elements: list[dict[str, Any]] = [_lark_md(md_escape(message.summary))]
    elements.append({"tag": "div", "fields": [
        {"is_short": False, "text": {"tag": "lark_md", "content": md_escape(line)}}
        for line in message.evidence]})
    shown = message.items[:MAX_ITEMS]
    for item in shown:
        elements += [{"tag": "hr"}, _lark_md(
            f"**[{md_escape(item.title)}]({item.links.view})**\n{md_escape(item.summary)}")]
    rest = more(message, len(shown))
    if rest:
        elements.append(_lark_md(rest))
    actions = [{"tag": "button", "text": {"tag": "plain_text", "content": label}, "url": url,
                "type": "primary" if i == 0 else "default"}
               for i, (label, url) in enumerate(buttons(message))]
    elements += [{"tag": "hr"}, {"tag": "action", "actions": actions}]
    body: dict[str, Any] = {}
    if timestamp is not None and sign is not None:
        body.update(timestamp=timestamp, sign=sign)
    body.update(msg_type="interactive", card={
        "config": {"wide_screen_mode": True},
        "header": {"title": {"tag": "plain_text", "content": message.title},
                   "template": _FEISHU_TEMPLATE.get(message.severity, "blue")},
        "elements": elements})
    return body


def _lark_md(content: str) -> dict[str, Any]:
    return {"tag": "div", "text": {"tag": "lark_md", "content": content}}
