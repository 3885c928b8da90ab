"""Slack incoming webhook (Block Kit) and Microsoft Teams workflow webhook (an Adaptive
Card in a message's attachments), as each vendor documents them. Pure."""

from __future__ import annotations

from typing import Any

from alerts.formats.text import MAX_ITEMS, buttons, more, split_line
from alerts.notify import Message

SLACK_HEADER_CHARS = 150  # Block Kit: a header's plain_text
SLACK_TEXT_CHARS = 3000  # Block Kit: a section's text
SLACK_MAX_ITEMS = 15  # each entry a block; a message may have 50


def slack_escape(text: str) -> str:
    """mrkdwn's three control characters, as Slack documents escaping them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(message: Message) -> dict[str, Any]:
    """`blocks` (header, summary, evidence, digest entries, buttons) and `text`, the
    fallback notifications and screen readers show."""
    evidence = "\n".join(f"• {slack_escape(line)}" for line in message.evidence)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": _cut(message.title, SLACK_HEADER_CHARS)}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": _cut(slack_escape(message.summary),
                                                  SLACK_TEXT_CHARS)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(evidence, SLACK_TEXT_CHARS)}},
    ]
    shown = message.items[:SLACK_MAX_ITEMS]
    for item in shown:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(
            f"*<{item.links.view}|{slack_escape(item.title)}>*\n{slack_escape(item.summary)}",
            SLACK_TEXT_CHARS)}})
    rest = more(message, len(shown))
    if rest:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": rest}]})
    actions = []
    for i, (label, url) in enumerate(buttons(message)):
        button: dict[str, Any] = {"type": "button", "url": url,
                                  "text": {"type": "plain_text", "text": label}}
        if i == 0:
            button["style"] = "primary"
        actions.append(button)
    blocks.append({"type": "actions", "elements": actions})
    return {"text": f"{message.title}: {message.summary}", "blocks": blocks}


def teams(message: Message) -> dict[str, Any]:
    """A `message` whose one attachment is an Adaptive Card (1.4), the payload a Teams
    workflow's "when a webhook request is received" trigger posts to a channel."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium",
         "wrap": True, **({"color": "Attention"} if message.severity == "high" else {})},
        {"type": "TextBlock", "text": message.summary, "wrap": True},
        {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in
                                      map(split_line, message.evidence)]},
    ]
    shown = message.items[:MAX_ITEMS]
    for item in shown:
        body.append({"type": "Container", "separator": True, "items": [
            {"type": "TextBlock", "text": f"[{item.title}]({item.links.view})", "wrap": True,
             "weight": "Bolder"},
            {"type": "TextBlock", "text": item.summary, "wrap": True}]})
    rest = more(message, len(shown))
    if rest:
        body.append({"type": "TextBlock", "text": rest, "isSubtle": True, "wrap": True})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard", "version": "1.4", "body": body,
            "actions": [{"type": "Action.OpenUrl", "title": label, "url": url}
                        for label, url in buttons(message)],
            "msteams": {"width": "Full"}}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
         "content": card}]}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
