// The alert settings page: GET /v1/alerts/routing into a form, PUT it back whole. Secrets
// are never shown (the API gives "set" or null); a secret left empty keeps the stored one.
import {LANGS, credential, defaultLang, esc, words} from "./alerting-i18n.js";

const KINDS = ["email", "wecom", "dingtalk", "feishu", "slack", "teams", "webhook"];
const TARGETS = ["owner", "manager", "managers_manager", "admin", "team"];
const BLANK = {
  channels: {id: "", kind: "wecom", target: "", secret: null, language: null},
  routes: {channel: "", to: ["owner"], rules: [], severities: []},
  escalations: {after_minutes: 60, rule: null, severity: null},
};
const $ = (sel) => document.querySelector(sel);
let lang = defaultLang();
let w = words(lang);
let doc = null;
const headers = {Accept: "application/json", ...credential()};

const cell = (html) => `<td>${html}</td>`;
const input = (path, value, type = "text", extra = "") =>
  `<input type="${type}" data-path="${path}" value="${esc(value ?? "")}" ${extra}>`;
const select = (path, value, options, label = (o) => o) =>
  `<select data-path="${path}">${options.map((o) =>
    `<option value="${esc(o)}"${o === (value ?? "") ? " selected" : ""}>${esc(label(o))}</option>`)
    .join("")}</select>`;
const remove = (list, i) =>
  `<button type="button" data-remove="${list}" data-index="${i}">${esc(w("remove"))}</button>`;
const add = (list) =>
  `<button type="button" data-add="${list}" data-testid="add-${list}">${esc(w("add"))}</button>`;
const table = (list, heads, rows) => `<table data-testid="${list}"><tr>${heads.map((h) =>
  `<th>${esc(w(h))}</th>`).join("")}<th></th></tr>${rows.join("")}</table>${add(list)}`;
const langLabel = (o) => o || "—";

function render() {
  document.documentElement.lang = lang;
  $("#result").textContent = "";  // said of the form as it was
  $("#result").className = "";
  document.querySelectorAll("[data-w]").forEach((el) => { el.textContent = w(el.dataset.w); });
  $("#channels").innerHTML = table("channels", ["id", "kind", "target", "secret", "lang"],
    doc.channels.map((c, i) => `<tr>${cell(input(`channels.${i}.id`, c.id))}
      ${cell(select(`channels.${i}.kind`, c.kind, KINDS))}
      ${cell(input(`channels.${i}.target`, c.target))}
      ${cell(input(`channels.${i}.secret`, c.secret === "set" ? "" : c.secret, "password",
                   `placeholder="${c.secret === "set" ? esc(w("secret_set")) : ""}" autocomplete="off"`))}
      ${cell(select(`channels.${i}.language`, c.language, ["", ...LANGS], langLabel))}
      ${cell(remove("channels", i))}</tr>`));
  const ids = doc.channels.map((c) => c.id);
  $("#routes").innerHTML = table("routes", ["channel", "to", "rules", "severities"],
    doc.routes.map((r, i) => `<tr>${cell(select(`routes.${i}.channel`, r.channel, ids))}
      ${cell(TARGETS.map((t) => `<label class="check"><input type="checkbox"
        data-path="routes.${i}.to" value="${t}"${r.to.includes(t) ? " checked" : ""}>
        ${esc(w("targets", t))}</label>`).join(""))}
      ${cell(input(`routes.${i}.rules`, r.rules.join(", ")))}
      ${cell(input(`routes.${i}.severities`, r.severities.join(", ")))}
      ${cell(remove("routes", i))}</tr>`));
  $("#escalations").innerHTML = table("escalations", ["after_minutes", "rule", "severity"],
    doc.escalations.map((e, i) => `<tr>
      ${cell(input(`escalations.${i}.after_minutes`, e.after_minutes, "number", 'min="1"'))}
      ${cell(input(`escalations.${i}.rule`, e.rule, "text", `placeholder="${esc(w("any"))}"`))}
      ${cell(input(`escalations.${i}.severity`, e.severity, "text",
                   `placeholder="${esc(w("any"))}"`))}
      ${cell(remove("escalations", i))}</tr>`));
  const q = doc.quiet;
  $("#quiet").innerHTML = `<label class="check"><input type="checkbox" data-path="quiet.on"
      data-testid="quiet-on"${q ? " checked" : ""}> ${esc(w("quiet_on"))}</label>
    ${q ? `<table><tr><th>${esc(w("start"))}</th><th>${esc(w("end"))}</th>
      <th>${esc(w("working_days"))}</th><th>${esc(w("let_through"))}</th></tr><tr>
      ${cell(input("quiet.start", q.start, "time"))}${cell(input("quiet.end", q.end, "time"))}
      ${cell(w("days").map((d, n) => `<label class="check"><input type="checkbox"
        data-path="quiet.working_days" value="${n}"${q.working_days.includes(n) ? " checked" : ""}>
        ${esc(d)}</label>`).join(""))}
      ${cell(input("quiet.let_through", q.let_through.join(", ")))}</tr></table>` : ""}`;
  $("#cap").innerHTML = `<label>${esc(w("cap_per_day"))}
      ${input("daily_cap", doc.daily_cap, "number", 'min="1" data-testid="daily-cap"')}</label>
    <p><label class="check"><input type="checkbox" data-path="key_customers_to_manager"
      ${doc.key_customers_to_manager ? " checked" : ""}> ${esc(w("key_to_manager"))}</label></p>`;
  const people = Object.values(doc.contacts);
  $("#contacts").innerHTML = table("contacts", ["id", "name", "lang", "email", "mobile"],
    people.map((p, i) => `<tr>${cell(input(`contacts.${i}.id`, p.id))}
      ${cell(input(`contacts.${i}.name`, p.name))}
      ${cell(select(`contacts.${i}.language`, p.language, LANGS))}
      ${cell(input(`contacts.${i}.email`, p.email, "email"))}
      ${cell(input(`contacts.${i}.mobile`, p.mobile))}
      ${cell(remove("contacts", i))}</tr>`));
}

const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
const orNull = (text) => (text.trim() === "" ? null : text.trim());

/** The document the form shows now, in the API's form. */
function collect() {
  const value = (path) => document.querySelector(`[data-path="${path}"]`)?.value ?? "";
  const checked = (path) => [...document.querySelectorAll(`[data-path="${path}"]:checked`)]
    .map((el) => el.value);
  const quietOn = document.querySelector('[data-path="quiet.on"]').checked;
  const cap = value("daily_cap");
  return {
    channels: doc.channels.map((c, i) => ({
      id: value(`channels.${i}.id`), kind: value(`channels.${i}.kind`),
      target: value(`channels.${i}.target`),
      secret: value(`channels.${i}.secret`) || null,  // null: keep the stored one
      language: orNull(value(`channels.${i}.language`))})),
    routes: doc.routes.map((r, i) => ({
      channel: value(`routes.${i}.channel`), to: checked(`routes.${i}.to`),
      rules: list(value(`routes.${i}.rules`)), severities: list(value(`routes.${i}.severities`))})),
    escalations: doc.escalations.map((e, i) => ({
      after_minutes: Number(value(`escalations.${i}.after_minutes`)),
      rule: orNull(value(`escalations.${i}.rule`)),
      severity: orNull(value(`escalations.${i}.severity`))})),
    quiet: !quietOn ? null : doc.quiet && {
      start: value("quiet.start"), end: value("quiet.end"),
      working_days: checked("quiet.working_days").map(Number),
      let_through: list(value("quiet.let_through"))},
    daily_cap: cap === "" ? null : Number(cap),
    key_customers_to_manager:
      document.querySelector('[data-path="key_customers_to_manager"]').checked,
    contacts: Object.fromEntries(Object.values(doc.contacts).map((p, i) => {
      const id = value(`contacts.${i}.id`);
      return [id, {id, name: value(`contacts.${i}.name`), language: value(`contacts.${i}.language`),
                   email: orNull(value(`contacts.${i}.email`)),
                   mobile: orNull(value(`contacts.${i}.mobile`))}];
    })),
  };
}

/** Keeps what was typed when rows are added or removed: the form is drawn from `doc`. */
function keep() {
  const secrets = doc.channels.map((c) => c.secret);
  doc = collect();
  doc.channels.forEach((c, i) => { c.secret = c.secret || secrets[i]; });
}

function mark(field) {
  document.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
  const match = /^(\w+)(?:\[(\d+)\])?(?:\.(\w+))?/.exec(field || "");
  if (!match) return;
  const [, top, index, key] = match;
  const path = index !== undefined ? `${top}.${index}${key ? `.${key}` : ""}`
    : `${top}${key ? `.${key}` : ""}`;
  document.querySelector(`[data-path="${path}"]`)?.classList.add("invalid");
}

async function save(event) {
  event.preventDefault();
  const result = $("#result");
  const response = await fetch("/v1/alerts/routing", {
    method: "PUT", headers: {...headers, "Content-Type": "application/json"},
    body: JSON.stringify(collect())});
  const body = await response.json();
  if (response.ok) {
    doc = body;
    render();
    result.className = "good";
    result.textContent = w("saved");
    return;
  }
  result.className = "bad";
  result.textContent = `${w("invalid")}: ${body.detail}`;
  mark(body.errors?.[0]?.field);
}

async function load() {
  const response = await fetch("/v1/alerts/routing", {headers});
  const note = $("#note");
  if (!response.ok) {
    note.className = "note bad";
    note.textContent = w(response.status === 403 ? "denied" : "sign_in");
    return;
  }
  doc = await response.json();
  note.textContent = "";
  $("#routing").hidden = false;
  render();
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("button[data-add], button[data-remove]");
  if (!target) return;
  keep();
  if (target.dataset.add === "contacts") {
    const n = Object.keys(doc.contacts).length;
    doc.contacts[`new-${n}`] = {id: "", name: "", language: lang, email: null, mobile: null};
  } else if (target.dataset.add) {
    doc[target.dataset.add].push(structuredClone(BLANK[target.dataset.add]));
  } else if (target.dataset.remove === "contacts") {
    const keys = Object.keys(doc.contacts);
    delete doc.contacts[keys[Number(target.dataset.index)]];
  } else {
    doc[target.dataset.remove].splice(Number(target.dataset.index), 1);
  }
  render();
});
/** The routes' channel lists, after a channel's id was typed: redrawn in place, so the
 * field being typed in next is not replaced under the cursor. */
function refreshChannelChoices() {
  const ids = [...document.querySelectorAll('[data-path^="channels."][data-path$=".id"]')]
    .map((el) => el.value);
  document.querySelectorAll('select[data-path^="routes."][data-path$=".channel"]').forEach((el) => {
    const chosen = el.value;
    el.innerHTML = ids.map((id) => `<option value="${esc(id)}"${id === chosen ? " selected" : ""}>`
      + `${esc(id)}</option>`).join("");
  });
}

document.addEventListener("input", (event) => {
  if (/^channels\.\d+\.id$/.test(event.target.dataset.path || "")) refreshChannelChoices();
});
document.addEventListener("change", (event) => {
  if (event.target.dataset.path === "quiet.on") {
    keep();
    if (event.target.checked) {
      doc.quiet = {start: "09:00", end: "18:00", working_days: [0, 1, 2, 3, 4],
                   let_through: ["high"]};
    }
    render();
  }
});
$("#routing").addEventListener("submit", save);
$("#lang").addEventListener("click", () => {
  if (doc) keep();
  lang = LANGS[(LANGS.indexOf(lang) + 1) % LANGS.length];
  localStorage.setItem("salespulse.lang", lang);
  w = words(lang);
  if (doc) render(); else document.querySelectorAll("[data-w]").forEach((el) => {
    el.textContent = w(el.dataset.w);
  });
});
if (!new URLSearchParams(location.search).get("lang")
    && LANGS.includes(localStorage.getItem("salespulse.lang"))) {
  lang = localStorage.getItem("salespulse.lang");
  w = words(lang);
}
load();
