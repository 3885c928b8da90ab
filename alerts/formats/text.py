"""What every rendering shares: the link buttons, a message as plain or markdown lines,
clipping to a vendor's size limit, and the signed webhook's JSON. Pure."""

from __future__ import annotations

from typing import Any

from alerts.notify import Message
from alerts.wording import LABELS

MAX_ITEMS = 20  # digest entries shown in a chat message; the rest are counted


def buttons(message: Message) -> list[tuple[str, str]]:
    """(label, url) of the message's links, in the recipient's language, present ones only."""
    labels = LABELS[message.language]
    links = message.links
    pairs = [("view", links.view), ("acknowledge", links.acknowledge), ("snooze", links.snooze)]
    return [(labels[key], url) for key, url in pairs if url]


def split_line(line: str) -> tuple[str, str]:
    """An evidence line `label: value` (or `label：value`) as its two halves."""
    for sep in ("：", ": "):
        if sep in line:
            label, value = line.split(sep, 1)
            return label, value
    return "", line


def more(message: Message, shown: int) -> str | None:
    rest = len(message.items) - shown
    return LABELS[message.language]["more"].format(n=rest) if rest > 0 else None


def clip(text: str, max_bytes: int) -> str:
    """`text` cut to `max_bytes` of UTF-8 (a vendor's limit), never inside a character."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes - 3].decode(errors="ignore") + "…"


def plain_lines(message: Message, limit: int = MAX_ITEMS) -> list[str]:
    """The message as plain text lines (WeCom text, the email's text part), with at most
    `limit` digest entries."""
    lines = [message.title, "", message.summary, ""]
    lines += [f"- {line}" for line in message.evidence]
    for item in message.items[:limit]:
        lines += ["", item.title, item.summary, item.links.view]
    rest = more(message, min(len(message.items), limit))
    if rest:
        lines += ["", rest]
    lines.append("")
    lines += [f"{label}: {url}" for label, url in buttons(message)]
    return lines


# The chat vendors' markdown subsets document no escape character (a backslash would show):
# the few characters that would open bold or a link become their full-width lookalikes.
_MARKDOWN_SAFE = str.maketrans({"*": "＊", "[": "［", "]": "］"})


def md_escape(text: str) -> str:
    """Keep ids and names (`*VIP*`, `[East]`) from turning into markdown."""
    return text.translate(_MARKDOWN_SAFE)


def markdown_lines(message: Message) -> list[str]:
    """The message as markdown (WeCom, DingTalk): bold title, evidence as a quote, links."""
    lines = [f"**{md_escape(message.title)}**", "", md_escape(message.summary), ""]
    lines += [f"> {md_escape(line)}" for line in message.evidence]
    for item in message.items[:MAX_ITEMS]:
        lines += ["", f"[{md_escape(item.title)}]({item.links.view})", md_escape(item.summary)]
    rest = more(message, min(len(message.items), MAX_ITEMS))
    if rest:
        lines += ["", rest]
    lines += ["", "  ".join(f"[{label}]({url})" for label, url in buttons(message))]
    return lines


def webhook_body(message: Message) -> dict[str, Any]:
    """The signed webhook channel's JSON: the message as it is, links and digest items too."""
    def one(m: Message) -> dict[str, Any]:
        return {"title": m.title, "summary": m.summary, "evidence": list(m.evidence),
                "severity": m.severity, "language": m.language,
                "links": {"view": m.links.view, "acknowledge": m.links.acknowledge,
                          "snooze": m.links.snooze}}
    return {**one(message), "mentions": list(message.mentions),
            "items": [one(item) for item in message.items]}
