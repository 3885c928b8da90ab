// Labels in English and Simplified Chinese; numbers and dates go through Intl per locale.

export const LANGS = ["en", "zh-CN"];

const en = {
  title: "SalesPulse · Sales dashboard",
  subtitle: "Live sales performance",
  from: "From", to: "To", team: "Team", rep: "Rep", region: "Region", source: "Source",
  product: "Product", all: "All", reset: "Reset", language: "中文",
  updated: "Updated", live: "Live", connecting: "Connecting…", offline: "Reconnecting…",
  sign_in: "Sign in", key_prompt: "API key (sp_…) or token", sign_out: "Sign out",
  signed_in_as: "Signed in as", role_admin: "admin", role_manager: "manager of",
  role_rep: "rep", role_ingest: "ingest", denied: "This credential may not read the dashboard",
  not_available: "Not available on this server yet", failed: "Could not load",
  empty: "Nothing to show for these filters",
  // KPIs
  won_value: "Won value", win_rate: "Win rate", won_lost: "Won / lost",
  cycle_median: "Sales cycle (median)", open_pipeline: "Open pipeline",
  forecast_30: "Forecast, next 30 days", booked: "Booked", collected: "Collected",
  outstanding: "Outstanding", days: "days", deals: "deals",
  // panels
  funnel: "Funnel", stage: "Stage", entered: "Entered", advanced: "Advanced",
  conversion: "Conversion", open_deals: "Open", open_amount: "Open amount",
  dwell_median: "Dwell median (d)", dwell_p90: "Dwell p90 (d)",
  trends: "Trends", week: "Week", month: "Month", new_leads: "New leads",
  converted: "Converted leads", won_deals: "Won deals",
  revenue: "Revenue: booked vs collected", ageing: "Receivables ageing", dso: "DSO",
  targets: "Targets", scope: "Scope", period: "Period", metric: "Metric", target: "Target",
  actual: "Actual", attainment: "Attainment", pace: "Pace (projected)", on_pace: "On pace",
  behind: "Behind", company: "Company", in_progress_only: "Periods in progress",
  forecast: "Forecast", next_30: "Next 30 days", next_90: "Next 90 days",
  weighted: "Weighted value", pipeline_amount: "Pipeline amount", probability: "Win probability",
  leaderboard: "Leaderboard", rank: "Rank", score: "Score", results: "Results",
  process: "Process", customer: "Customer", team_avg: "Team average",
  rep_page: "Rep", pick_rep: "Click a rep in the leaderboard to see their page",
  figure: "Figure", this_rep: "This rep", activities: "Activities",
  activities_by_kind: "Activities by kind", close: "Close",
  at_risk: "Customers at risk", stalled: "Stalled deals", evidence: "Evidence",
  alerts: "Live alerts", no_alerts: "No alerts yet — new ones appear here as they fire",
  leads: "Leads", lead_conversion: "Lead conversion", avg_won_value: "Average won value",
  cycle_days_median: "Cycle median (d)", deals_count: "Deals", open: "Open", lost: "Lost", won: "Won",
  stages: {prospecting: "Prospecting", qualification: "Qualification", proposal: "Proposal",
           negotiation: "Negotiation", won: "Won", lost: "Lost"},
  metrics: {won_value: "Won value", won_deals: "Won deals", new_leads: "New leads",
            activities: "Activities", collected: "Collected"},
  since: "since", key_customer: "Key customer",
  alert_settings: "Alert settings", alert_history: "Alert history",
  rules: {stalled_deal: "Stalled in stage", inactive_deal: "No activity", lead_sla: "Lead SLA missed",
          churn_risk: "Churn risk", engagement_drop: "Engagement drop", pace: "Behind target pace"},
  transitions: {opened: "New", resolved: "Resolved", acknowledged: "Acknowledged",
                snoozed: "Snoozed", retracted: "Retracted", reopened: "Reopened"},
  kinds: {call: "Call", visit: "Visit", email: "Email", meeting: "Meeting",
          message: "Message", demo: "Demo", other: "Other"},
};

const zh = {
  title: "SalesPulse · 销售看板",
  subtitle: "实时销售业绩",
  from: "开始", to: "结束", team: "团队", rep: "销售", region: "区域", source: "来源",
  product: "产品", all: "全部", reset: "重置", language: "English",
  updated: "更新于", live: "实时", connecting: "连接中…", offline: "重新连接中…",
  sign_in: "登录", key_prompt: "API 密钥（sp_…）或令牌", sign_out: "退出",
  signed_in_as: "当前身份", role_admin: "管理员", role_manager: "经理，团队",
  role_rep: "销售", role_ingest: "写入", denied: "此凭据无权查看看板",
  not_available: "此服务器暂未提供", failed: "加载失败",
  empty: "当前筛选条件下没有数据",
  won_value: "赢单金额", win_rate: "赢单率", won_lost: "赢单 / 输单",
  cycle_median: "销售周期（中位数）", open_pipeline: "在途商机",
  forecast_30: "未来30天预测", booked: "订单额", collected: "回款额",
  outstanding: "应收余额", days: "天", deals: "个商机",
  funnel: "销售漏斗", stage: "阶段", entered: "进入", advanced: "推进",
  conversion: "转化率", open_deals: "在途", open_amount: "在途金额",
  dwell_median: "停留中位数（天）", dwell_p90: "停留P90（天）",
  trends: "趋势", week: "周", month: "月", new_leads: "新线索",
  converted: "已转化线索", won_deals: "赢单数",
  revenue: "收入：订单额与回款额", ageing: "应收账龄", dso: "应收账款周转天数",
  targets: "目标", scope: "范围", period: "周期", metric: "指标", target: "目标值",
  actual: "实际", attainment: "达成率", pace: "进度（预计）", on_pace: "进度正常",
  behind: "落后", company: "公司", in_progress_only: "进行中的周期",
  forecast: "业绩预测", next_30: "未来30天", next_90: "未来90天",
  weighted: "加权金额", pipeline_amount: "商机金额", probability: "赢单概率",
  leaderboard: "排行榜", rank: "排名", score: "得分", results: "业绩",
  process: "过程", customer: "客户", team_avg: "团队平均",
  rep_page: "销售个人", pick_rep: "点击排行榜中的销售查看个人页面",
  figure: "指标", this_rep: "本人", activities: "活动数",
  activities_by_kind: "按类型的活动", close: "关闭",
  at_risk: "风险客户", stalled: "停滞商机", evidence: "依据",
  alerts: "实时预警", no_alerts: "暂无预警——新预警触发后会出现在这里",
  leads: "线索数", lead_conversion: "线索转化率", avg_won_value: "平均赢单金额",
  cycle_days_median: "周期中位数（天）", deals_count: "商机数", open: "在途", lost: "输单", won: "赢单",
  stages: {prospecting: "初步接触", qualification: "需求确认", proposal: "方案报价",
           negotiation: "商务谈判", won: "赢单", lost: "输单"},
  metrics: {won_value: "赢单金额", won_deals: "赢单数", new_leads: "新线索",
            activities: "活动数", collected: "回款额"},
  since: "始于", key_customer: "重点客户",
  alert_settings: "提醒设置", alert_history: "提醒记录",
  rules: {stalled_deal: "阶段停滞", inactive_deal: "长期未跟进", lead_sla: "线索响应超时",
          churn_risk: "流失风险", engagement_drop: "互动下降", pace: "目标进度落后"},
  transitions: {opened: "新预警", resolved: "已解除", acknowledged: "已确认", snoozed: "已暂缓",
                retracted: "已撤回", reopened: "重新打开"},
  kinds: {call: "电话", visit: "拜访", email: "邮件", meeting: "会议",
          message: "消息", demo: "演示", other: "其他"},
};

const DICTS = {en, "zh-CN": zh};

export function defaultLang() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (LANGS.includes(asked)) return asked;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

/** A translator bound to one language: t("key") or t("stages", "won"). */
export function translator(lang) {
  const dict = DICTS[lang] || en;
  return (key, sub) => {
    const value = dict[key] ?? en[key];
    if (sub === undefined) return value ?? key;
    return (value && value[sub]) ?? sub;
  };
}

/** Formatters for one locale, currency and time zone. Amounts arrive as decimal strings;
 * they are turned into numbers only here, for display. */
export function formatters(lang, currency, timeZone) {
  const money = new Intl.NumberFormat(lang, {style: "currency", currency,
                                             maximumFractionDigits: 0});
  const compact = new Intl.NumberFormat(lang, {style: "currency", currency,
                                               notation: "compact", maximumFractionDigits: 1});
  const count = new Intl.NumberFormat(lang, {maximumFractionDigits: 0});
  const decimal = new Intl.NumberFormat(lang, {maximumFractionDigits: 1});
  const percent = new Intl.NumberFormat(lang, {style: "percent", maximumFractionDigits: 1});
  const month = new Intl.DateTimeFormat(lang, {year: "numeric", month: "short", timeZone: "UTC"});
  const stamp = new Intl.DateTimeFormat(lang, {dateStyle: "medium", timeStyle: "short",
                                               timeZone});
  const dash = "–";
  const num = (v) => (v === null || v === undefined || v === "" ? null : Number(v));
  return {
    money: (v) => (num(v) === null ? dash : money.format(num(v))),
    compact: (v) => (num(v) === null ? dash : compact.format(num(v))),
    count: (v) => (num(v) === null ? dash : count.format(num(v))),
    decimal: (v) => (num(v) === null ? dash : decimal.format(num(v))),
    percent: (v) => (num(v) === null ? dash : percent.format(num(v))),
    stamp: (v) => (v ? stamp.format(new Date(v)) : dash),
    /** A period key from the API (2026-11, 2026-Q3, 2026-W47, 2026) in the locale's words. */
    period: (key) => {
      let m = /^(\d{4})-(\d{2})$/.exec(key);
      if (m) return month.format(Date.UTC(+m[1], +m[2] - 1, 1));
      m = /^(\d{4})-W(\d{2})$/.exec(key);
      if (m) return lang === "zh-CN" ? `${m[1]}年第${+m[2]}周` : `W${+m[2]} ${m[1]}`;
      m = /^(\d{4})-Q(\d)$/.exec(key);
      if (m) return lang === "zh-CN" ? `${m[1]}年第${m[2]}季度` : `Q${m[2]} ${m[1]}`;
      return key;
    },
  };
}
