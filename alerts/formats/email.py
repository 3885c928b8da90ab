"""An alert as an email: the subject, a plain text part and an HTML part (the sender puts
them in a multipart/alternative mail). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from alerts.formats.text import buttons, plain_lines, split_line
from alerts.notify import Message

_COLOUR = {"high": "#c62828", "medium": "#ef6c00", "low": "#1565c0"}


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def email(message: Message) -> EmailContent:
    text = "\n".join(plain_lines(message, len(message.items))) + "\n"  # every entry
    return EmailContent(subject=message.title, text=text, html=_html(message))


def _html(message: Message) -> str:
    colour = _COLOUR.get(message.severity, "#1565c0")
    rows = "".join(
        f'<tr><td style="padding:2px 12px 2px 0;color:#555">{escape(label)}</td>'
        f"<td>{escape(value)}</td></tr>" for label, value in map(split_line, message.evidence))
    items = "".join(
        f'<li><a href="{escape(i.links.view)}">{escape(i.title)}</a><br>{escape(i.summary)}</li>'
        for i in message.items)
    links = " ".join(
        f'<a href="{escape(url)}" style="display:inline-block;padding:8px 14px;margin-right:8px;'
        f'background:{colour if n == 0 else "#eeeeee"};color:{"#fff" if n == 0 else "#222"};'
        f'text-decoration:none;border-radius:4px">{escape(label)}</a>'
        for n, (label, url) in enumerate(buttons(message)))
    return (f'<!DOCTYPE html><html lang="{message.language}"><head><meta charset="utf-8">'
            f"<title>{escape(message.title)}</title></head>"
            f'<body style="font-family:sans-serif;font-size:14px;color:#222">'
            f'<h2 style="color:{colour};font-size:18px">{escape(message.title)}</h2>'
            f"<p>{escape(message.summary)}</p>"
            f"<table>{rows}</table>"
            + (f"<ul>{items}</ul>" if items else "")
            + f"<p>{links}</p></body></html>")
