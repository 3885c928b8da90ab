// Labels of the alert settings and alert history pages, in English and Simplified Chinese.
import {LANGS, defaultLang} from "./i18n.js";

export {LANGS, defaultLang};

const en = {
  settings_title: "Alert settings", history_title: "Alert history", back: "Dashboard",
  language: "中文", save: "Save", saved: "Saved", add: "Add", remove: "Remove",
  channels: "Channels", routes: "Routes", escalation: "Escalation", quiet: "Quiet hours",
  cap: "Daily cap", contacts: "Contacts", id: "Id", kind: "Kind", target: "Target",
  secret: "Secret", secret_set: "set — leave empty to keep", lang: "Language",
  channel: "Channel", to: "To", rules: "Rules (comma separated, empty: all)",
  severities: "Severities (empty: all)", after_minutes: "After (minutes)", rule: "Rule",
  severity: "Severity", any: "any", quiet_on: "Hold alerts outside working hours",
  start: "Start", end: "End", working_days: "Working days", let_through: "Let through",
  cap_per_day: "Interruptions per person per day (empty: no cap)",
  key_to_manager: "High-severity key-customer alerts go straight to the manager",
  name: "Name", email: "Email", mobile: "Mobile", invalid: "Not saved",
  denied: "Only an admin may change alert settings", sign_in: "Sign in with an admin key",
  subject: "Deal or customer", show: "Show", no_alerts: "No alerts on this subject",
  transitions: "Transitions", deliveries: "Told", actions: "Done", nobody: "nobody yet",
  via_api: "in the dashboard or API", via_link: "by one-tap link",
  did: {acknowledged: "acknowledged", snoozed: "snoozed"},
  targets: {owner: "owner", manager: "manager", managers_manager: "manager's manager",
            admin: "admin", team: "team channel"},
  days: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
};

const zh = {
  settings_title: "提醒设置", history_title: "提醒记录", back: "看板", language: "English",
  save: "保存", saved: "已保存", add: "添加", remove: "删除", channels: "通知渠道",
  routes: "通知规则", escalation: "升级", quiet: "免打扰时段", cap: "每日上限",
  contacts: "联系人", id: "标识", kind: "类型", target: "地址", secret: "密钥",
  secret_set: "已设置——留空则保留", lang: "语言", channel: "渠道", to: "通知对象",
  rules: "规则（逗号分隔，留空为全部）", severities: "级别（留空为全部）",
  after_minutes: "超过（分钟）", rule: "规则", severity: "级别", any: "任意",
  quiet_on: "非工作时间暂缓提醒", start: "开始", end: "结束", working_days: "工作日",
  let_through: "仍然放行", cap_per_day: "每人每天打扰次数（留空为不限）",
  key_to_manager: "重点客户的高级别提醒直接发给经理", name: "姓名", email: "邮箱",
  mobile: "手机", invalid: "未保存", denied: "只有管理员可以修改提醒设置",
  sign_in: "请使用管理员密钥登录", subject: "商机或客户", show: "查看",
  no_alerts: "此对象没有提醒", transitions: "状态变化", deliveries: "已通知",
  actions: "处理", nobody: "尚无人处理", via_api: "通过看板或接口", via_link: "通过一键链接",
  did: {acknowledged: "已确认", snoozed: "已推迟"},
  targets: {owner: "负责人", manager: "经理", managers_manager: "上级经理", admin: "管理员",
            team: "团队群"},
  days: ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
};

const DICTS = {en, "zh-CN": zh};

export function words(lang) {
  const dict = DICTS[lang] || en;
  return (key, sub) => {
    const value = dict[key] ?? en[key];
    return sub === undefined ? value ?? key : (value && value[sub]) ?? sub;
  };
}

const KEY = "salespulse.key";  // the dashboard's: one sign-in for its pages

/** The credential from `#key=…` (then cleared from the address bar) or this tab's storage. */
export function credential() {
  const given = new URLSearchParams(location.hash.slice(1)).get("key");
  if (given) {
    sessionStorage.setItem(KEY, given);
    history.replaceState(null, "", `${location.pathname}${location.search}`);
  }
  const key = sessionStorage.getItem(KEY);
  return key ? {Authorization: `Bearer ${key}`} : {};
}

export const esc = (s) => String(s ?? "").replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
