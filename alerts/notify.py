"""Who is told of an alert, through what, and in which words: the shared model. Pure.

The alerter routes each transition (`alerts/routing.py`) to recipients on channels, composes
a message in the recipient's language (`alerts/messages.py`) and hands it to the channel's
sender (`services/alerter/channels/`) through a durable outbox. These types are the seams
between those parts; none of them does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ChannelKind = Literal["email", "wecom", "dingtalk", "feishu", "slack", "teams", "webhook"]
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("email", "wecom", "dingtalk", "feishu", "slack",
                                          "teams", "webhook")
Language = Literal["en", "zh-CN"]
LANGUAGES: tuple[Language, ...] = ("en", "zh-CN")


@dataclass(frozen=True)
class Channel:
    """A place messages go: a chat bot's webhook URL, an email inbox, a signed webhook.

    `target` is the bot's URL (WeCom: its key URL), or for email the address(es), comma
    separated, or empty to mean "the recipient's own address". `secret` signs (DingTalk,
    Feishu, the signed webhook); it is never returned by the API."""

    id: str
    kind: ChannelKind
    target: str
    secret: str | None = None
    language: Language | None = None  # a team channel's language; else the recipient's


@dataclass(frozen=True)
class Recipient:
    """A person (a rep, a manager, an admin) or a team's channel, as a message addresses it."""

    id: str  # a rep id, `team:<id>` or `admin`
    name: str
    language: Language = "en"
    email: str | None = None
    mobile: str | None = None  # @-mentions in DingTalk and WeCom


@dataclass(frozen=True)
class Links:
    """Where the message's buttons lead: the subject's dashboard view, and the signed,
    expiring, single-use acknowledge and snooze links for this alert and recipient."""

    view: str
    acknowledge: str | None = None
    snooze: str | None = None


@dataclass(frozen=True)
class Message:
    """What a channel renders: a title, the facts in lines, the evidence, the links."""

    title: str
    summary: str
    evidence: list[str]
    links: Links
    severity: str
    language: Language
    mentions: list[str] = field(default_factory=list)  # mobiles to @-mention
    items: list[Message] = field(default_factory=list)  # a digest's entries, each with links
