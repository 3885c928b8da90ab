"""The words of alert messages, in English and Simplified Chinese. Pure.

Each phrase is a `str.format` template keyed by language; `alerts/messages.py` fills them
from an alert's facts. Stage names follow the dashboard's (`services/api/dashboard/i18n.js`).
"""

from __future__ import annotations

from alerts.notify import Language

RULES: dict[Language, dict[str, str]] = {
    "en": {"stalled_deal": "Deal stalled", "inactive_deal": "Deal without activity",
           "lead_sla": "Lead not contacted", "churn_risk": "Customer may churn",
           "engagement_drop": "Customer engagement dropped", "pace": "Behind target pace"},
    "zh-CN": {"stalled_deal": "商机停滞", "inactive_deal": "商机长期无跟进",
              "lead_sla": "线索超时未联系", "churn_risk": "客户流失风险",
              "engagement_drop": "客户互动减少", "pace": "目标进度落后"},
}

KINDS: dict[Language, dict[str, str]] = {
    "en": {"opened": "New alert", "resolved": "Resolved", "retracted": "Retracted",
           "escalated": "Escalated", "reopened": "Reopened", "acknowledged": "Acknowledged",
           "snoozed": "Snoozed"},
    "zh-CN": {"opened": "新告警", "resolved": "已解除", "retracted": "已撤回",
              "escalated": "已升级", "reopened": "重新打开", "acknowledged": "已确认",
              "snoozed": "已暂缓"},
}

# What the transition means, after the condition's own sentence.
HAPPENED: dict[Language, dict[str, str]] = {
    "en": {"opened": "Since {since}.",
           "resolved": "Resolved at {at}: the condition no longer holds.",
           "retracted": "Retracted at {at}: later events show it never held.",
           "escalated": "Escalated to you at {at}: nobody acknowledged it in time.",
           "reopened": "Reopened at {at}: the condition holds again.",
           "acknowledged": "Acknowledged at {at}.",
           "snoozed": "Snoozed at {at}."},
    "zh-CN": {"opened": "自 {since} 起。",
              "resolved": "已于 {at} 解除：条件不再成立。",
              "retracted": "已于 {at} 撤回：后续事件表明该告警并不成立。",
              "escalated": "已于 {at} 升级给您：规定时间内无人确认。",
              "reopened": "已于 {at} 重新打开：条件再次成立。",
              "acknowledged": "已于 {at} 确认。",
              "snoozed": "已于 {at} 暂缓。"},
}

SUBJECTS: dict[Language, dict[str, str]] = {
    "en": {"deal": "Deal {name}", "customer": "Customer {name}", "lead": "Lead {name}",
           "rep_target": "{name}'s {period} target", "team_target": "Team {name}'s {period} target",
           "target": "Target {name}"},
    "zh-CN": {"deal": "商机 {name}", "customer": "客户 {name}", "lead": "线索 {name}",
              "rep_target": "{name} 的 {period} 目标",
              "team_target": "团队 {name} 的 {period} 目标",
              "target": "目标 {name}"},
}

# The condition, in one sentence: what is true of the subject and against which threshold.
CONDITIONS: dict[Language, dict[str, str]] = {
    "en": {
        "stalled_deal": "{subject} has been in stage {stage} for {days} days; the stage's "
                        "threshold is {threshold} days.",
        "inactive_deal": "{subject} has had no activity for {days} days; the threshold is "
                         "{threshold} days.",
        "lead_sla": "{subject} was {what} {hours} h ago and nobody has contacted it; the "
                    "response time is {sla} h.",
        "churn_risk": "{subject} has not ordered for {days} days; it usually orders every "
                      "{gap} days.",
        "engagement_drop": "{subject} had {recent} interactions in the last {recent_days} days, "
                           "against {prior} in the {prior_days} days before.",
        "pace": "{subject}: {actual} of {target} {metric}; at the current rate {share} of the "
                "target, below the floor of {floor}.",
    },
    "zh-CN": {
        "stalled_deal": "{subject} 已在「{stage}」阶段停留 {days} 天，超过该阶段阈值 "
                        "{threshold} 天。",
        "inactive_deal": "{subject} 已 {days} 天没有任何跟进活动，阈值为 {threshold} 天。",
        "lead_sla": "{subject} {what}已 {hours} 小时，仍无人联系；响应时限为 {sla} 小时。",
        "churn_risk": "{subject} 已 {days} 天未下单，而通常每 {gap} 天下单一次。",
        "engagement_drop": "{subject} 近 {recent_days} 天互动 {recent} 次，此前 {prior_days} 天为 "
                           "{prior} 次。",
        "pace": "{subject}：{metric}完成 {actual}/{target}，按当前进度预计达成 {share}，低于底线 "
                "{floor}。",
    },
}

LABELS: dict[Language, dict[str, str]] = {
    "en": {"owner": "Owner", "manager": "Manager", "team": "Team", "customer": "Customer",
           "amount": "Amount", "stage": "Stage", "in_stage": "Days in stage",
           "threshold": "Threshold", "basis": "Threshold from", "idle": "Days without activity",
           "last_activity": "Last activity", "next_step": "Next step due",
           "since_start": "Hours since {what}", "sla": "Response time",
           "last_order": "Last order", "typical_gap": "Usual gap between orders",
           "orders": "Orders", "gap_factor": "Alert after", "recent": "Interactions, last {n} days",
           "prior": "Interactions, {n} days before", "period": "Period", "metric": "Metric",
           "actual": "Achieved", "target": "Target", "projected": "Projected at current rate",
           "floor": "Floor", "severity": "Severity", "key_customer": "Key customer",
           "since": "Since", "view": "Open in dashboard", "acknowledge": "Acknowledge",
           "snooze": "Snooze", "digest_title": "{n} alerts", "digest_summary":
           "{n} alert updates since the last message.", "more": "and {n} more"},
    "zh-CN": {"owner": "负责人", "manager": "经理", "team": "团队", "customer": "客户",
              "amount": "金额", "stage": "阶段", "in_stage": "阶段停留天数", "threshold": "阈值",
              "basis": "阈值依据", "idle": "无跟进天数", "last_activity": "最近跟进",
              "next_step": "下一步计划", "since_start": "{what}后小时数", "sla": "响应时限",
              "last_order": "最近下单", "typical_gap": "通常下单间隔", "orders": "订单数",
              "gap_factor": "告警条件", "recent": "近 {n} 天互动", "prior": "此前 {n} 天互动",
              "period": "周期", "metric": "指标", "actual": "已完成", "target": "目标",
              "projected": "按当前进度预计", "floor": "底线", "severity": "严重程度",
              "key_customer": "重点客户", "since": "开始时间", "view": "在看板中查看",
              "acknowledge": "确认", "snooze": "暂缓", "digest_title": "{n} 条告警",
              "digest_summary": "自上条消息以来共有 {n} 条告警动态。", "more": "另有 {n} 条"},
}

VALUES: dict[Language, dict[str, str]] = {
    "en": {"days": "{n} days", "hours": "{n} h", "high": "High", "medium": "Medium",
           "low": "Low", "yes": "yes", "assigned": "assigned", "created": "created",
           "configured": "set in the pipeline", "default": "the default",
           "learned": "p{q} of {n} won deals", "gap_factor": "{factor} × the usual gap",
           "won_value": "won value", "won_deals": "won deals", "activities": "activities",
           "high_tag": "[High] "},
    "zh-CN": {"days": "{n} 天", "hours": "{n} 小时", "high": "高", "medium": "中", "low": "低",
              "yes": "是", "assigned": "分配", "created": "创建", "configured": "流水线配置",
              "default": "默认值", "learned": "{n} 个赢单商机的第 {q} 百分位",
              "gap_factor": "超过通常间隔的 {factor} 倍", "won_value": "赢单金额",
              "won_deals": "赢单数", "activities": "活动数", "high_tag": "【高】"},
}

STAGES: dict[Language, dict[str, str]] = {
    "en": {"prospecting": "Prospecting", "qualification": "Qualification",
           "proposal": "Proposal", "negotiation": "Negotiation", "won": "Won", "lost": "Lost"},
    "zh-CN": {"prospecting": "初步接触", "qualification": "需求确认", "proposal": "方案报价",
              "negotiation": "商务谈判", "won": "赢单", "lost": "输单"},
}
