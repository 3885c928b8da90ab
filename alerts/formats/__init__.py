"""A `Message` rendered as each vendor documents its payload. Pure: no I/O, no clock.

- `chat`: WeCom group robot, DingTalk custom robot, Feishu/Lark custom bot;
- `cards`: Slack incoming webhook (Block Kit), Microsoft Teams workflow (Adaptive Card);
- `email`: subject, plain text and HTML for a multipart/alternative mail;
- `webhook_body`: the signed webhook's JSON.
"""

from __future__ import annotations

from alerts.formats.cards import slack, teams
from alerts.formats.chat import dingtalk, feishu, wecom
from alerts.formats.email import EmailContent, email
from alerts.formats.text import webhook_body

__all__ = ["EmailContent", "dingtalk", "email", "feishu", "slack", "teams", "webhook_body",
           "wecom"]
