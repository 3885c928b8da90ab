"""The small pages of one-tap acknowledge and snooze, in English or Simplified Chinese.

GET shows what the link will do and a button that POSTs: chat apps and mail scanners fetch
links ahead of the reader, so only the button acts."""

from __future__ import annotations

from html import escape

from alerts.notify import LANGUAGES, Language

_WORDS: dict[Language, dict[str, str]] = {
    "en": {"acknowledge": "Acknowledge this alert", "snooze": "Snooze this alert for 24 hours",
           "button_acknowledge": "Acknowledge", "button_snooze": "Snooze 24 h",
           "done_acknowledge": "Acknowledged. Thank you.",
           "done_snooze": "Snoozed until {until}.",
           "used": "This link was already used: it acts once.",
           "invalid": "This link cannot be used: it was not made by this server.",
           "expired": "This link has expired. Open the alert in the dashboard instead.",
           "missing": "This alert no longer exists.",
           "closed": "This alert is already {state}: nothing to do.",
           "title": "SalesPulse alert"},
    "zh-CN": {"acknowledge": "确认此提醒", "snooze": "将此提醒推迟 24 小时",
              "button_acknowledge": "确认", "button_snooze": "推迟 24 小时",
              "done_acknowledge": "已确认，谢谢。", "done_snooze": "已推迟至 {until}。",
              "used": "此链接已使用过：每个链接只能使用一次。",
              "invalid": "此链接无法使用：并非本服务生成。",
              "expired": "此链接已过期，请在看板中查看此提醒。", "missing": "此提醒已不存在。",
              "closed": "此提醒已{state}，无需操作。", "title": "SalesPulse 提醒"},
}


def language(accept_language: str | None) -> Language:
    """The reader's language from Accept-Language: zh-CN if Chinese ranks above English."""
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        ranked.append((-weight, order, tag.strip().lower()))
    for _weight, _order, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return LANGUAGES[0]


def words(lang: Language, key: str, **values: str) -> str:
    return _WORDS[lang][key].format(**values)


def page(lang: Language, body: str) -> str:
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(words(lang, 'title'))}</title><style>body{{font-family:system-ui,"
            "sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}button{font-size:1.2rem;"
            "padding:.6rem 1.4rem}</style></head>"
            f"<body><h1>{escape(words(lang, 'title'))}</h1>{body}</body></html>")


def confirmation(lang: Language, action: str, summary: str) -> str:
    return page(lang, f"<p>{escape(summary)}</p><p>{escape(words(lang, action))}</p>"
                      f'<form method="post"><button type="submit">'
                      f"{escape(words(lang, 'button_' + action))}</button></form>")


def message(lang: Language, key: str, **values: str) -> str:
    return page(lang, f'<p role="status">{escape(words(lang, key, **values))}</p>')
