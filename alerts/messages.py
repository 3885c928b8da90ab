"""An alert transition in words: what happened, to which subject, the evidence, the links. Pure.

`compose` turns one transition into a `Message` in the recipient's language (or the one
asked for: a team channel's); `compose_digest` gathers several into one. The numbers come
from what each rule of `alerts/rules.py` put in the alert's `facts`; the few a rule tells
only in its English `evidence` (the threshold's basis, the lead's response time, the churn
factor, the engagement windows, the pace floor) are read from there. Names, when the router
knows them, ride in `facts` too: `deal_name`, `customer_name`, `lead_name`, `owner_name`,
`manager_name`, `team_name`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from alerts import wording as w
from alerts.lifecycle import Transition
from alerts.notify import Language, Links, Message, Recipient

SEVERITY_ORDER = ("low", "medium", "high")


def compose(transition: Transition, recipient: Recipient, links: Links, *,
            language: Language | None = None, tz: tzinfo = UTC) -> Message:
    """The message telling `recipient` of `transition`; times shown in `tz` (the tenant's)."""
    lang: Language = language or recipient.language
    alert = transition.alert
    v = w.VALUES[lang]
    tag = v["high_tag"] if alert.severity == "high" else ""
    title = (f"{tag}{w.KINDS[lang].get(transition.kind, transition.kind)} · "
             f"{w.RULES[lang].get(alert.rule, alert.rule)} · {subject_label(alert, lang)}")
    happened = w.HAPPENED[lang].get(transition.kind, "").format(
        since=_when(alert.became_true_at, tz), at=_when(transition.at, tz))
    gap = "" if lang == "zh-CN" else " "
    summary = f"{condition(alert, lang)}{gap}{happened}".strip()
    mentions = [recipient.mobile] if recipient.mobile else []
    return Message(title=title, summary=summary, evidence=evidence(alert, lang, tz),
                   links=links, severity=alert.severity, language=lang, mentions=mentions)


def compose_digest(transitions: Sequence[Transition], recipient: Recipient,
                   links_for: Callable[[Transition], Links], *, language: Language | None = None,
                   tz: tzinfo = UTC, view: str | None = None) -> Message:
    """One message for several transitions: each an item with its own links; the digest's
    own link is `view` (say, the alerts page), else the first item's."""
    if not transitions:
        raise ValueError("a digest needs at least one transition")
    lang: Language = language or recipient.language
    items = [compose(t, recipient, links_for(t), language=lang, tz=tz) for t in transitions]
    severity = max((i.severity for i in items), key=_severity_rank)
    labels = w.LABELS[lang]
    tag = w.VALUES[lang]["high_tag"] if severity == "high" else ""
    title = tag + labels["digest_title"].format(n=len(items))
    counts: dict[str, int] = {}
    for t in transitions:
        counts[t.kind] = counts.get(t.kind, 0) + 1
    sep = "，" if lang == "zh-CN" else ", "
    tally = sep.join(f"{w.KINDS[lang].get(k, k)} {n}" for k, n in counts.items())
    return Message(title=title, summary=labels["digest_summary"].format(n=len(items)),
                   evidence=[tally], links=Links(view=view or items[0].links.view),
                   severity=severity, language=lang,
                   mentions=[recipient.mobile] if recipient.mobile else [], items=items)


def subject_label(alert: Any, lang: Language) -> str:
    facts = alert.facts
    kinds = w.SUBJECTS[lang]
    if alert.subject_kind == "target" and facts.get("scope") in ("rep", "team"):
        scope = facts["scope"]
        name_key = "owner_name" if scope == "rep" else "team_name"
        name = _named(facts.get(name_key), str(facts.get("scope_id") or alert.subject), lang)
        return kinds[f"{scope}_target"].format(name=name, period=facts.get("period", ""))
    template = kinds.get(alert.subject_kind, "{name}")
    return template.format(name=_named(facts.get(f"{alert.subject_kind}_name"), alert.subject,
                                       lang))


def condition(alert: Any, lang: Language) -> str:
    """The rule's sentence: what holds of the subject, against which threshold."""
    template = w.CONDITIONS[lang].get(alert.rule)
    if template is None:
        return str(alert.evidence)
    values = _CONDITION_VALUES[alert.rule](alert.facts, alert.evidence, lang)
    return template.format(subject=subject_label(alert, lang), **values)


def evidence(alert: Any, lang: Language, tz: tzinfo) -> list[str]:
    """The facts behind the alert as `label: value` lines, then who owns it and its severity."""
    labels, v = w.LABELS[lang], w.VALUES[lang]
    colon = "：" if lang == "zh-CN" else ": "
    lines = [f"{labels[k].format(**fmt)}{colon}{value}"
             for k, fmt, value in _EVIDENCE[alert.rule](alert.facts, alert.evidence, lang, tz)
             if value not in (None, "")] if alert.rule in _EVIDENCE else [str(alert.evidence)]
    facts = alert.facts
    if alert.owner:
        lines.append(f"{labels['owner']}{colon}"
                     f"{_named(facts.get('owner_name'), alert.owner, lang)}")
    if alert.manager:
        lines.append(f"{labels['manager']}{colon}"
                     f"{_named(facts.get('manager_name'), alert.manager, lang)}")
    lines.append(f"{labels['severity']}{colon}{v.get(alert.severity, alert.severity)}")
    return lines


# --- per rule: the condition's numbers and the evidence lines ------------------------------


def _stalled(facts: dict[str, Any], text: str, lang: Language) -> dict[str, str]:
    return {"stage": _stage(facts.get("stage"), lang), "days": _num(facts.get("days_in_stage")),
            "threshold": _num(facts.get("threshold_days"))}


def _inactive(facts: dict[str, Any], text: str, lang: Language) -> dict[str, str]:
    return {"days": _num(facts.get("idle_days")),
            "threshold": _find(r"threshold ([\d.]+)", text) or "?"}


def _lead(facts: dict[str, Any], text: str, lang: Language) -> dict[str, str]:
    what = _find(r"^(assigned|created)", text) or "created"
    return {"what": w.VALUES[lang][what], "hours": _num(facts.get("hours")),
            "sla": _find(r"SLA ([\d.]+) h", text) or "?"}


def _churn(facts: dict[str, Any], text: str, lang: Language) -> dict[str, str]:
    return {"days": _find(r"no order for ([\d.]+) days", text) or "?",
            "gap": _num(facts.get("typical_gap_days"))}


def _engagement(facts: dict[str, Any], text: str, lang: Language) -> dict[str, str]:
    windows = re.search(r"last ([\d.]+) days; \d+ in the ([\d.]+) days", text)
    recent_days, prior_days = windows.groups() if windows else ("?", "?")
    return {"recent": str(facts.get("recent", "?")), "prior": str(facts.get("prior", "?")),
            "recent_days": recent_days, "prior_days": prior_days}


def _pace(facts: dict[str, Any], text: str, lang: Language) -> dict[str, str]:
    share = facts.get("projected_share")
    metric = str(facts.get("metric", ""))
    return {"actual": str(facts.get("actual", "?")), "target": str(facts.get("target", "?")),
            "metric": w.VALUES[lang].get(metric, metric),
            "share": f"{share:.0%}" if isinstance(share, float) else "?",
            "floor": _find(r"floor (\d+%)", text) or "?"}


_CONDITION_VALUES: dict[str, Callable[[dict[str, Any], str, Language], dict[str, str]]] = {
    "stalled_deal": _stalled, "inactive_deal": _inactive, "lead_sla": _lead,
    "churn_risk": _churn, "engagement_drop": _engagement, "pace": _pace}

Line = tuple[str, dict[str, Any], Any]  # label key, its format values, the value


def _deal_lines(facts: dict[str, Any], lang: Language) -> list[Line]:
    customer = facts.get("customer")
    return [("customer", {}, _named(facts.get("customer_name"), customer, lang)
             if customer else None), ("amount", {}, _amount(facts.get("amount")))]


def _stalled_lines(facts: dict[str, Any], text: str, lang: Language, tz: tzinfo) -> list[Line]:
    v = w.VALUES[lang]
    return [("stage", {}, _stage(facts.get("stage"), lang)),
            ("in_stage", {}, v["days"].format(n=_num(facts.get("days_in_stage")))),
            ("threshold", {}, v["days"].format(n=_num(facts.get("threshold_days")))),
            ("basis", {}, _basis(text, lang)), *_deal_lines(facts, lang)]


def _inactive_lines(facts: dict[str, Any], text: str, lang: Language, tz: tzinfo) -> list[Line]:
    v = w.VALUES[lang]
    threshold = _find(r"threshold ([\d.]+)", text)
    next_step = _find(r"next step due (\S+)", text)
    return [("idle", {}, v["days"].format(n=_num(facts.get("idle_days")))),
            ("threshold", {}, v["days"].format(n=threshold) if threshold else None),
            ("last_activity", {}, _when_iso(facts.get("last_activity_at"), tz)),
            ("next_step", {}, _when_iso(next_step, tz)), *_deal_lines(facts, lang)]


def _lead_lines(facts: dict[str, Any], text: str, lang: Language, tz: tzinfo) -> list[Line]:
    v, values = w.VALUES[lang], _lead(facts, text, lang)
    return [("since_start", {"what": values["what"]}, v["hours"].format(n=values["hours"])),
            ("sla", {}, v["hours"].format(n=values["sla"]))]


def _churn_lines(facts: dict[str, Any], text: str, lang: Language, tz: tzinfo) -> list[Line]:
    v = w.VALUES[lang]
    factor = _find(r"x ([\d.]+)$", text)
    return [("last_order", {}, _when_iso(facts.get("last_order_at"), tz)),
            ("typical_gap", {}, v["days"].format(n=_num(facts.get("typical_gap_days")))),
            ("gap_factor", {}, v["gap_factor"].format(factor=factor) if factor else None),
            ("orders", {}, facts.get("orders")),
            ("key_customer", {}, v["yes"] if facts.get("key_customer") else None)]


def _engagement_lines(facts: dict[str, Any], text: str, lang: Language,
                      tz: tzinfo) -> list[Line]:
    values = _engagement(facts, text, lang)
    return [("recent", {"n": values["recent_days"]}, values["recent"]),
            ("prior", {"n": values["prior_days"]}, values["prior"]),
            ("key_customer", {}, w.VALUES[lang]["yes"] if facts.get("key_customer") else None)]


def _pace_lines(facts: dict[str, Any], text: str, lang: Language, tz: tzinfo) -> list[Line]:
    values = _pace(facts, text, lang)
    return [("period", {}, facts.get("period")), ("metric", {}, values["metric"]),
            ("actual", {}, values["actual"]), ("target", {}, values["target"]),
            ("projected", {}, values["share"]), ("floor", {}, values["floor"])]


_EVIDENCE: dict[str, Callable[[dict[str, Any], str, Language, tzinfo], list[Line]]] = {
    "stalled_deal": _stalled_lines, "inactive_deal": _inactive_lines, "lead_sla": _lead_lines,
    "churn_risk": _churn_lines, "engagement_drop": _engagement_lines, "pace": _pace_lines}


# --- small formats ------------------------------------------------------------------------


def _named(name: Any, ident: Any, lang: Language) -> str:
    if not name or name == ident:
        return str(ident)
    return f"{name}（{ident}）" if lang == "zh-CN" else f"{name} ({ident})"


def _amount(amount: Any) -> str | None:
    return None if amount in (None, "", 0, "0") else str(amount)  # an unpriced deal: no line


def _stage(stage: Any, lang: Language) -> str:
    return w.STAGES[lang].get(str(stage), str(stage))


def _num(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "?"


def _find(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text or "")
    return found.group(1) if found else None


def _basis(text: str, lang: Language) -> str | None:
    basis = _find(r"\(([^()]*)\)\s*$", text)
    if basis is None:
        return None
    learned = re.fullmatch(r"p(\d+) of (\d+) won deals", basis)
    if learned:
        return w.VALUES[lang]["learned"].format(q=learned.group(1), n=learned.group(2))
    return w.VALUES[lang].get(basis, basis)


def _when(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z").strip()


def _when_iso(value: Any, tz: tzinfo) -> str | None:
    return _when(datetime.fromisoformat(value), tz) if isinstance(value, str) else None


def _severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else 0
