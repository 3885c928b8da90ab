"""What a manager reads: each rule's real alert (from the engine on a controlled clock) as a
message in English and Chinese, every kind of transition, names, and digests."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from alerts.lifecycle import Transition, resolved, revised
from alerts.messages import compose, compose_digest
from alerts.notify import Links, Recipient
from tests.unit.test_alert_rules import T0, TZ, Scenario, only, orders, with_rep

LINKS = Links(view="https://sp.example/dashboard#deal=D1",
              acknowledge="https://sp.example/a/ack?t=x", snooze="https://sp.example/a/snz?t=y")
EN = Recipient("M1", "Han Meimei", "en", email="han@example.com", mobile="13800000000")
ZH = Recipient("M1", "韩梅梅", "zh-CN", email="han@example.com")


def stalled() -> Transition:
    s = Scenario(inactive_days=1000)
    with_rep(s)
    s.event("pipeline.configured", T0 - timedelta(days=1),
            stages=["qualification", "negotiation"], stall_days={"negotiation": 15})
    s.event("deal.created", T0, deal_id="D1", owner_id="R1", stage="negotiation",
            amount="100", customer_id="C9")
    return only(s.at(T0 + timedelta(days=15)), "opened", "stalled_deal")


def inactive() -> Transition:
    s = Scenario(stall_days=1000)
    with_rep(s)
    s.event("deal.created", T0, deal_id="D1", owner_id="R1")
    due = T0 + timedelta(days=20)
    s.event("activity.scheduled", T0 + timedelta(days=1), activity_id="A1", kind="call",
            rep_id="R1", deal_id="D1", due_at=due.isoformat())
    return only(s.at(due), "opened", "inactive_deal")


def lead() -> Transition:
    s = Scenario()
    with_rep(s)
    s.event("lead.created", T0, lead_id="L1")
    s.event("lead.assigned", T0 + timedelta(hours=2), lead_id="L1", owner_id="R1")
    return only(s.at(T0 + timedelta(hours=26)), "opened", "lead_sla")


def churn() -> Transition:
    s = Scenario(stall_days=1000, inactive_days=1000)
    with_rep(s)
    orders(s, [0, 10, 30])
    return only(s.at(T0 + timedelta(days=60)), "opened", "churn_risk")


def engagement() -> Transition:
    s = Scenario()
    with_rep(s)
    s.event("customer.created", T0, customer_id="C1")
    for day in range(0, 81, 10):
        s.event("activity.logged", T0 + timedelta(days=day), activity_id=f"A{day}",
                kind="visit", rep_id="R1", customer_id="C1")
    return only(s.at(T0 + timedelta(days=100)), "opened", "engagement_drop")


def pace() -> Transition:
    s = Scenario(stall_days=1000, inactive_days=1000)
    with_rep(s)
    s.event("target.set", T0, scope="rep", scope_id="R1", period="2017-03",
            metric="won_value", value="1000")
    s.event("deal.created", T0, deal_id="D1", owner_id="R1", amount="200")
    s.event("deal.won", T0 + timedelta(days=1), deal_id="D1")
    return only(s.at(T0 + timedelta(days=31 / 3)), "opened", "pace")


def test_a_stalled_deal_tells_days_in_stage_against_the_stage_threshold_in_english() -> None:
    m = compose(stalled(), EN, LINKS, tz=TZ)
    assert m.title == "New alert · Deal stalled · Deal D1"
    assert m.summary == ("Deal D1 has been in stage Negotiation for 15.0 days; the stage's "
                         "threshold is 15.0 days. Since 2017-03-16 00:00 CST.")
    assert m.evidence == ["Stage: Negotiation", "Days in stage: 15.0 days",
                          "Threshold: 15.0 days", "Threshold from: set in the pipeline",
                          "Customer: C9", "Amount: 100", "Owner: R1", "Manager: M1",
                          "Severity: Medium"]
    assert (m.language, m.severity, m.links, m.mentions) == ("en", "medium", LINKS,
                                                             ["13800000000"])


def test_a_stalled_deal_in_chinese() -> None:
    m = compose(stalled(), ZH, LINKS, tz=TZ)
    assert m.title == "新告警 · 商机停滞 · 商机 D1"
    assert m.summary == ("商机 D1 已在「商务谈判」阶段停留 15.0 天，超过该阶段阈值 15.0 天。"
                         "自 2017-03-16 00:00 CST 起。")
    assert "阈值依据：流水线配置" in m.evidence
    assert "负责人：R1" in m.evidence and "严重程度：中" in m.evidence
    assert m.mentions == []  # no mobile known


def test_an_inactive_deal_tells_idle_days_and_the_overdue_next_step() -> None:
    t = inactive()
    en, zh = compose(t, EN, LINKS, tz=TZ), compose(t, ZH, LINKS, tz=TZ)
    assert en.summary.startswith("Deal D1 has had no activity for 20.0 days; the threshold "
                                 "is 14.0 days.")
    assert "Next step due: 2017-03-21 00:00 CST" in en.evidence
    assert zh.summary.startswith("商机 D1 已 20.0 天没有任何跟进活动，阈值为 14.0 天。")
    assert "下一步计划：2017-03-21 00:00 CST" in zh.evidence


def test_a_lead_tells_hours_since_assignment_against_the_response_time() -> None:
    t = lead()
    en, zh = compose(t, EN, LINKS, tz=TZ), compose(t, ZH, LINKS, tz=TZ)
    assert en.title == "New alert · Lead not contacted · Lead L1"
    assert en.summary.startswith("Lead L1 was assigned 24.0 h ago and nobody has contacted "
                                 "it; the response time is 24 h.")
    assert zh.summary.startswith("线索 L1 分配已 24.0 小时，仍无人联系；响应时限为 24 小时。")
    assert "Hours since assigned: 24.0 h" in en.evidence


def test_churn_risk_tells_days_without_an_order_against_the_usual_cadence() -> None:
    t = churn()
    en, zh = compose(t, EN, LINKS, tz=TZ), compose(t, ZH, LINKS, tz=TZ)
    assert en.summary.startswith("Customer C1 has not ordered for 30.0 days; it usually "
                                 "orders every 15.0 days.")
    assert "Alert after: 2 × the usual gap" in en.evidence and "Orders: 3" in en.evidence
    assert zh.summary.startswith("客户 C1 已 30.0 天未下单，而通常每 15.0 天下单一次。")
    assert "告警条件：超过通常间隔的 2 倍" in zh.evidence


def test_engagement_drop_tells_both_windows() -> None:
    t = engagement()
    en, zh = compose(t, EN, LINKS, tz=TZ), compose(t, ZH, LINKS, tz=TZ)
    assert en.summary.startswith("Customer C1 had 1 interactions in the last 30 days, against "
                                 "8 in the 90 days before.")
    assert zh.summary.startswith("客户 C1 近 30 天互动 1 次，此前 90 天为 8 次。")
    assert "Interactions, 90 days before: 8" in en.evidence


def test_pace_tells_achieved_target_and_projection_against_the_floor() -> None:
    t = pace()
    en, zh = compose(t, EN, LINKS, tz=TZ), compose(t, ZH, LINKS, tz=TZ)
    assert en.title == "New alert · Behind target pace · R1's 2017-03 target"
    assert en.summary.startswith("R1's 2017-03 target: 200 of 1000 won value; at the current "
                                 "rate 60% of the target, below the floor of 80%.")
    assert zh.title == "新告警 · 目标进度落后 · R1 的 2017-03 目标"
    assert zh.summary.startswith("R1 的 2017-03 目标：赢单金额完成 200/1000，按当前进度预计达成 "
                                 "60%，低于底线 80%。")


@pytest.mark.parametrize(("kind", "en", "zh"), [
    ("resolved", "Resolved at 2017-03-20 08:00 CST: the condition no longer holds.",
     "已于 2017-03-20 08:00 CST 解除：条件不再成立。"),
    ("retracted", "Retracted at 2017-03-20 08:00 CST: later events show it never held.",
     "已于 2017-03-20 08:00 CST 撤回：后续事件表明该告警并不成立。"),
    ("escalated", "Escalated to you at 2017-03-20 08:00 CST: nobody acknowledged it in time.",
     "已于 2017-03-20 08:00 CST 升级给您：规定时间内无人确认。"),
    ("reopened", "Reopened at 2017-03-20 08:00 CST: the condition holds again.",
     "已于 2017-03-20 08:00 CST 重新打开：条件再次成立。"),
])
def test_each_transition_says_what_happened(kind: str, en: str, zh: str) -> None:
    opened = stalled()
    at = T0 + timedelta(days=19, hours=8)
    t = resolved(opened.alert, at) if kind == "resolved" else revised(kind, opened.alert, at, 2)
    m_en, m_zh = compose(t, EN, LINKS, tz=TZ), compose(t, ZH, LINKS, tz=TZ)
    assert m_en.summary.endswith(en) and m_zh.summary.endswith(zh)
    assert m_en.title.startswith({"resolved": "Resolved", "retracted": "Retracted",
                                  "escalated": "Escalated", "reopened": "Reopened"}[kind])


def test_names_in_the_facts_stand_beside_the_ids_and_high_severity_is_flagged() -> None:
    t = stalled()
    alert = replace(t.alert, severity="high", facts={
        **t.alert.facts, "deal_name": "Big order", "customer_name": "Acme Ltd",
        "owner_name": "Li Lei", "manager_name": "Han Meimei"})
    named = replace(t, alert=alert)
    en, zh = compose(named, EN, LINKS, tz=TZ), compose(named, ZH, LINKS, tz=TZ)
    assert en.title == "[High] New alert · Deal stalled · Deal Big order (D1)"
    assert "Customer: Acme Ltd (C9)" in en.evidence and "Owner: Li Lei (R1)" in en.evidence
    assert zh.title == "【高】新告警 · 商机停滞 · 商机 Big order（D1）"
    assert "客户：Acme Ltd（C9）" in zh.evidence and "严重程度：高" in zh.evidence


def test_the_channel_language_overrides_the_recipients() -> None:
    assert compose(stalled(), EN, LINKS, language="zh-CN").language == "zh-CN"


def test_a_digest_gathers_transitions_each_with_its_links_and_the_highest_severity() -> None:
    ts = [stalled(), churn(), lead()]
    ts[1] = replace(ts[1], alert=replace(ts[1].alert, severity="high"))

    def links_for(t: Transition) -> Links:
        return Links(view=f"https://sp.example/dashboard#{t.alert.subject}")

    en = compose_digest(ts, EN, links_for, tz=TZ, view="https://sp.example/dashboard#alerts")
    assert en.title == "[High] 3 alerts" and en.severity == "high"
    assert en.summary == "3 alert updates since the last message."
    assert en.evidence == ["New alert 3"]
    assert [i.links.view for i in en.items] == [f"https://sp.example/dashboard#{s}"
                                                for s in ("D1", "C1", "L1")]
    assert en.items[1].title.startswith("[High] New alert · Customer may churn")
    assert en.links.view == "https://sp.example/dashboard#alerts"
    zh = compose_digest(ts, ZH, links_for)
    assert zh.title == "【高】3 条告警" and zh.items[0].language == "zh-CN"
    assert zh.links.view == "https://sp.example/dashboard#D1"  # no view given: the first's
    with pytest.raises(ValueError):
        compose_digest([], EN, links_for)


def test_a_learned_threshold_says_from_how_many_won_deals() -> None:
    t = stalled()
    learned = replace(t, alert=replace(
        t.alert, evidence="in negotiation 25.0 days; threshold 21.0 (p80 of 12 won deals)"))
    assert "Threshold from: p80 of 12 won deals" in compose(learned, EN, LINKS).evidence
    assert "阈值依据：12 个赢单商机的第 80 百分位" in compose(learned, ZH, LINKS).evidence
