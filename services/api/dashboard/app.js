// The dashboard: reads the public API with the filters in the URL, draws with ECharts
// (global `echarts`, vendored), and follows /v1/alerts/stream. No framework, no build step.
import {LANGS, defaultLang, formatters, translator} from "./i18n.js";

const FILTERS = ["from", "to", "team", "rep", "region", "source", "product"];
const COLORS = ["#2f6fed", "#17a05d", "#e09a1a", "#8e5bd9", "#d9453d", "#2bb3c0"];
const state = {
  lang: defaultLang(), display: {currency: "CNY", timezone: "Asia/Shanghai"},
  dims: null, charts: {}, refreshTimer: null, pending: null, alertsSeen: new Set(), source: null,
  me: null, refreshing: [],
};
let t = translator(state.lang);
let fmt = formatters(state.lang, state.display.currency, state.display.timezone);

// ---- URL state: the query string is the view (reload or share restores it) -------------

const query = () => new URLSearchParams(location.search);

function setQuery(changes, push = true) {
  const params = query();
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === "") params.delete(key);
    else params.set(key, value);
  }
  const url = `${location.pathname}${params.size ? `?${params}` : ""}`;
  (push ? history.pushState : history.replaceState).call(history, null, "", url);
}

function filterParams(extra = {}, keys = FILTERS) {
  const params = new URLSearchParams();
  for (const key of keys) {
    const value = query().get(key);
    if (value) params.set(key, value);
  }
  for (const [key, value] of Object.entries(extra)) params.set(key, value);
  return params;
}

// ---- credential: an API key or token, kept for this tab only ------------------------------

const KEY = "salespulse.key";
{
  // `salespulse up` prints /dashboard#key=…: the fragment never reaches a server or its logs;
  // take it into this tab's storage and clear the address bar.
  const given = new URLSearchParams(location.hash.slice(1)).get("key");
  if (given) {
    sessionStorage.setItem(KEY, given);
    history.replaceState(null, "", `${location.pathname}${location.search}`);
  }
}
const authHeaders = () => {
  const key = sessionStorage.getItem(KEY);
  return key ? {Authorization: `Bearer ${key}`} : {};
};

function signIn(note = "") {
  const dialog = $("#sign-in");
  if (dialog.open) return;
  $("#sign-in-note").textContent = note;
  dialog.showModal();
}

// ---- API --------------------------------------------------------------------------------

/** {ok, status, data}: a 404 means "this server has no such endpoint (yet)". `withFilters`:
 * every filter, none (false), or the ones named (a route refuses parameters it does not take).
 * `signal`: the refresh asking; once a newer one overtakes it, its requests are cancelled
 * (the server then drops questions not yet computed) and this throws an AbortError. */
async function api(path, extra = {}, withFilters = true, signal = undefined) {
  const params = withFilters === true ? filterParams(extra)
    : withFilters ? filterParams(extra, withFilters) : new URLSearchParams(extra);
  const url = `${path}${params.size ? `?${params}` : ""}`;
  try {
    const response = await fetch(url, {headers: {Accept: "application/json", ...authHeaders()},
                                       signal});
    if (response.status === 401) signIn(t("sign_in"));
    const data = response.ok ? await response.json() : null;
    return {ok: response.ok, status: response.status, data};
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return {ok: false, status: 0, data: null, error};
  }
}

const esc = (s) => String(s ?? "").replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
const $ = (sel) => document.querySelector(sel);
const repName = (id) => state.dims?.reps.find((r) => r.id === id)?.name || id;

/** Marks a panel unavailable (404) or failed; returns true when the answer is usable. */
function usable(panel, answer) {
  const section = document.querySelector(`[data-panel="${panel}"]`);
  const body = section?.querySelector(".body");
  section?.classList.toggle("missing", !answer.ok);
  if (answer.ok) {
    body?.querySelector(":scope > .unavailable")?.remove();
    body?.querySelectorAll(":scope > *").forEach((el) => { el.hidden = false; });
    return true;
  }
  if (body) {
    body.querySelectorAll(":scope > *").forEach((el) => { el.hidden = true; });
    const note = document.createElement("div");
    note.className = "unavailable";
    note.dataset.testid = `unavailable-${panel}`;
    note.textContent = answer.status === 404 ? t("not_available")
      : `${t("failed")} (${answer.status || "network"})`;
    body.append(note);
  }
  return false;
}

function chart(id) {
  const el = document.getElementById(id);
  if (!state.charts[id] || state.charts[id].getDom() !== el) {
    state.charts[id] = echarts.init(el, null, {locale: state.lang === "zh-CN" ? "ZH" : "EN"});
  }
  return state.charts[id];
}

// ---- panels -----------------------------------------------------------------------------

function kpi(key, label, value, raw, note = "") {
  return `<div class="kpi" data-testid="kpi-${key}" data-value="${esc(raw)}">
    <div class="label">${esc(label)}</div><div class="value">${esc(value)}</div>
    <div class="note">${esc(note)}</div></div>`;
}

function renderKpis({funnel, cycle, forecast, revenue}) {
  const cards = [];
  if (funnel.ok) {
    const f = funnel.data;
    cards.push(kpi("won_value", t("won_value"), fmt.compact(f.won_value), f.won_value,
                   fmt.money(f.won_value)));
    cards.push(kpi("win_rate", t("win_rate"), fmt.percent(f.win_rate), f.win_rate ?? "",
                   `${t("won_lost")}: ${fmt.count(f.won)} / ${fmt.count(f.lost)}`));
    const open = f.stages.reduce((s, r) => s + r.open_deals, 0);
    const amount = f.stages.reduce((s, r) => s + Number(r.open_amount), 0);
    cards.push(kpi("open_pipeline", t("open_pipeline"), fmt.compact(amount), open,
                   `${fmt.count(open)} ${t("deals")}`));
  }
  if (cycle.ok) {
    cards.push(kpi("cycle", t("cycle_median"),
                   `${fmt.decimal(cycle.data.won_days_median)} ${t("days")}`,
                   cycle.data.won_days_median ?? ""));
  }
  if (forecast.ok) {
    const next = forecast.data.next_30_days;
    cards.push(kpi("forecast_30", t("forecast_30"), fmt.compact(next.weighted_value),
                   next.weighted_value, `${t("pipeline_amount")} ${fmt.compact(next.amount)}`));
  }
  if (revenue.ok) {
    const total = revenue.data.total;
    cards.push(kpi("booked", t("booked"), fmt.compact(total.booked), total.booked));
    cards.push(kpi("collected", t("collected"), fmt.compact(total.collected), total.collected,
                   `${t("outstanding")} ${fmt.compact(total.outstanding)}`));
  }
  $("#kpis").innerHTML = cards.join("");
}

function renderFunnel(answer) {
  if (!usable("funnel", answer)) return;
  const f = answer.data;
  chart("funnel-chart").setOption({
    color: COLORS,
    tooltip: {trigger: "item", valueFormatter: fmt.count},
    series: [{
      type: "funnel", sort: "none", left: "5%", width: "90%", gap: 2,
      label: {position: "inside", color: "#fff", formatter: (p) => `${p.name}  ${fmt.count(p.value)}`},
      data: [...f.stages.map((s) => ({name: t("stages", s.stage), value: s.entered})),
             {name: t("stages", "won"), value: f.won}],
    }],
  }, true);
  const cell = (stage, field, raw, text) =>
    `<td data-testid="funnel-${stage}-${field}" data-value="${esc(raw ?? "")}">${esc(text)}</td>`;
  const rows = f.stages.map((s) => `<tr><td>${esc(t("stages", s.stage))}</td>
    ${cell(s.stage, "entered", s.entered, fmt.count(s.entered))}
    ${cell(s.stage, "advanced", s.advanced, fmt.count(s.advanced))}
    ${cell(s.stage, "conversion", s.conversion, fmt.percent(s.conversion))}
    ${cell(s.stage, "open_deals", s.open_deals, fmt.count(s.open_deals))}
    ${cell(s.stage, "open_amount", s.open_amount, fmt.money(s.open_amount))}
    ${cell(s.stage, "dwell_median", s.dwell_days_median, fmt.decimal(s.dwell_days_median))}
    ${cell(s.stage, "dwell_p90", s.dwell_days_p90, fmt.decimal(s.dwell_days_p90))}</tr>`);
  rows.push(`<tr><td>${esc(t("stages", "won"))} / ${esc(t("stages", "lost"))}</td>
    ${cell("won", "won", f.won, fmt.count(f.won))}${cell("won", "lost", f.lost, fmt.count(f.lost))}
    ${cell("won", "win_rate", f.win_rate, fmt.percent(f.win_rate))}<td></td>
    ${cell("won", "won_value", f.won_value, fmt.money(f.won_value))}<td></td><td></td></tr>`);
  $("#funnel-table").innerHTML = `<table data-testid="funnel-table"><thead><tr>
    <th>${t("stage")}</th><th>${t("entered")}</th><th>${t("advanced")}</th>
    <th>${t("conversion")}</th><th>${t("open_deals")}</th><th>${t("open_amount")}</th>
    <th>${t("dwell_median")}</th><th>${t("dwell_p90")}</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table>`;
}

async function renderTrends(signal = undefined) {
  const grain = query().get("trend") === "week" ? "week" : "month";
  document.querySelectorAll("#trend-toggle button").forEach((b) =>
    b.classList.toggle("active", b.dataset.grain === grain));
  const [leads, revenue, deals] = await Promise.all([
    api("/v1/leads", {by: grain}, true, signal), api("/v1/revenue", {by: grain}, true, signal),
    grain === "month" ? api("/v1/breakdown", {by: "month"}, true, signal)
      : Promise.resolve(null)]);
  if (!usable("trends", leads.ok || revenue.ok ? {ok: true} : leads)) return;
  const rowsOf = (a) => (a?.ok ? a.data.rows : []);
  const keys = [...new Set([...rowsOf(leads), ...rowsOf(revenue), ...rowsOf(deals)]
    .map((r) => r.key))].sort();
  const column = (a, field) => {
    const byKey = new Map(rowsOf(a).map((r) => [r.key, r[field]]));
    return keys.map((k) => (byKey.has(k) ? Number(byKey.get(k)) : 0));
  };
  const series = [];
  if (revenue.ok) {
    series.push({name: t("booked"), type: "bar", data: column(revenue, "booked")},
                {name: t("collected"), type: "bar", data: column(revenue, "collected")});
  }
  if (deals?.ok) series.push({name: t("won_value"), type: "line", data: column(deals, "won_value")});
  if (leads.ok) {
    series.push({name: t("new_leads"), type: "line", yAxisIndex: 1, data: column(leads, "new")});
  }
  if (deals?.ok) series.push({name: t("won_deals"), type: "line", yAxisIndex: 1,
                              data: column(deals, "won")});
  chart("trend-chart").setOption({
    color: COLORS, legend: {top: 0}, grid: {left: 70, right: 40, top: 36, bottom: 30},
    tooltip: {trigger: "axis"},
    xAxis: {type: "category", data: keys.map(fmt.period)},
    yAxis: [{type: "value", axisLabel: {formatter: fmt.compact}},
            {type: "value", splitLine: {show: false}}],
    series,
  }, true);
}

function renderRevenue(answer) {
  if (!usable("revenue", answer)) return;
  const r = answer.data;
  chart("revenue-chart").setOption({
    color: COLORS, legend: {top: 0}, tooltip: {trigger: "axis", valueFormatter: fmt.money},
    grid: {left: 70, right: 10, top: 36, bottom: 30},
    xAxis: {type: "category", data: r.rows.map((row) => fmt.period(row.key))},
    yAxis: {type: "value", axisLabel: {formatter: fmt.compact}},
    series: [
      {name: t("booked"), type: "bar", data: r.rows.map((row) => Number(row.booked))},
      {name: t("collected"), type: "bar", data: r.rows.map((row) => Number(row.collected))},
      {name: t("outstanding"), type: "line", data: r.rows.map((row) => Number(row.outstanding))},
    ],
  }, true);
  const aging = Object.entries(r.total.aging || {});
  chart("ageing-chart").setOption({
    color: [COLORS[1], COLORS[2], "#e0701a", COLORS[4]],
    title: {text: t("ageing"), left: "center", textStyle: {fontSize: 13},
            subtext: `${t("outstanding")} ${fmt.money(r.total.outstanding)} · ${t("dso")} ` +
                     `${fmt.decimal(r.total.dso)} ${t("days")}`},
    tooltip: {trigger: "item", valueFormatter: fmt.money},
    series: [{type: "pie", radius: ["35%", "62%"], top: 40,
              label: {formatter: (p) => `${p.name}${state.lang === "zh-CN" ? "天" : "d"}`},
              data: aging.filter(([, value]) => Number(value) > 0)
                .map(([name, value]) => ({name, value: Number(value)}))}],
  }, true);
}

function renderForecast(answer) {
  if (!usable("forecast", answer)) return;
  const f = answer.data;
  const stages = f.next_90_days.stages.map((s) => s.stage);
  const weighted = (window) => stages.map((stage) =>
    Number(window.stages.find((s) => s.stage === stage)?.weighted_value ?? 0));
  chart("forecast-chart").setOption({
    color: COLORS, legend: {top: 0}, tooltip: {trigger: "axis", valueFormatter: fmt.money},
    grid: {left: 70, right: 10, top: 36, bottom: 30},
    xAxis: {type: "category", data: [t("next_30"), t("next_90")]},
    yAxis: {type: "value", axisLabel: {formatter: fmt.compact}},
    series: stages.map((stage, i) => ({
      name: t("stages", stage), type: "bar", stack: "w",
      data: [weighted(f.next_30_days)[i], weighted(f.next_90_days)[i]]})),
  }, true);
  $("#forecast-text").innerHTML = ["next_30_days", "next_90_days"].map((k, i) =>
    `<div data-testid="forecast-${k}" data-value="${esc(f[k].weighted_value)}">
      <b>${t(i ? "next_90" : "next_30")}</b>: ${t("weighted")} ${fmt.money(f[k].weighted_value)}
      · ${t("pipeline_amount")} ${fmt.money(f[k].amount)} (${fmt.count(f[k].deals)})</div>`)
    .join("");
}

function renderTargets(answer) {
  if (!usable("targets", answer)) return;
  const order = {company: 0, team: 1, rep: 2};
  // The targets under way, or when none is, the latest that are over (`targetsShown`).
  const rows = answer.data.targets.slice(answer.latestOver ? -12 : 0);
  rows.sort((a, b) => order[a.scope] - order[b.scope] || a.period.localeCompare(b.period)
    || String(a.scope_id).localeCompare(String(b.scope_id)) || a.metric.localeCompare(b.metric));
  const amount = (r, v) => (["won_value", "collected"].includes(r.metric) ? fmt.compact(v)
                                                                         : fmt.count(v));
  const body = rows.map((r) => {
    const width = Math.min(100, Math.round((r.attainment ?? 0) * 100));
    const who = r.scope === "company" ? t("company")
      : r.scope === "rep" ? repName(r.scope_id) : r.scope_id;
    const pace = r.on_pace === null ? "" : r.on_pace
      ? `<span class="good">${t("on_pace")}</span>` : `<span class="bad">${t("behind")}</span>`;
    return `<tr><td>${esc(who)}<br><small>${esc(fmt.period(r.period))}</small></td>
      <td>${esc(t("metrics", r.metric))}<br><small>${amount(r, r.actual)} / ${amount(r, r.target)}</small></td>
      <td><span class="bar" style="width:${width * 0.6}px"></span>${fmt.percent(r.attainment)}</td>
      <td>${fmt.percent(r.pace_attainment)}<br><small>${pace}</small></td></tr>`;
  });
  $("#targets").innerHTML = body.length ? `<div class="scroll"><table data-testid="targets-table">
    <thead><tr><th>${t("scope")}</th><th>${t("metric")}</th><th>${t("attainment")}</th>
    <th>${t("pace")}</th></tr></thead><tbody>${body.join("")}</tbody></table></div>`
    : `<div class="unavailable">${t("empty")}</div>`;
}

function renderLeaderboard(answer) {
  if (!usable("leaderboard", answer)) return;
  const {rows, weights} = answer.data;
  const parts = ["results", "process", "customer"];
  const selected = query().get("profile") || query().get("rep");
  const body = rows.map((r) => {
    const stack = parts.map((p, i) => `<span title="${esc(t(p))}" style="width:${
      (r.components[p] ?? 0) * (weights[p] ?? 0) / 100}%;background:${COLORS[i]}"></span>`).join("");
    return `<tr class="clickable${r.rep === selected ? " selected" : ""}" data-rep="${esc(r.rep)}"
      data-testid="leader-${esc(r.rep)}"><td>${r.rank_company}. ${esc(r.name || r.rep)}
      <small>${esc(r.team ?? "")}</small></td>
      <td><span class="stack">${stack}</span> <b>${fmt.decimal(r.score)}</b></td>
      ${parts.map((p) => `<td>${fmt.decimal(r.components[p])}</td>`).join("")}
      <td>${fmt.compact(r.figures.won_value)}</td>
      <td>${fmt.decimal(r.team_average.score)}</td></tr>`;
  });
  $("#leaderboard").innerHTML = `<div class="scroll"><table data-testid="leaderboard-table"><thead><tr>
    <th>${t("rank")}</th><th>${t("score")}</th>
    ${parts.map((p, i) => `<th><span style="color:${COLORS[i]}">■</span> ${t(p)} ${
      fmt.count(weights[p])}%</th>`).join("")}
    <th>${t("won_value")}</th><th>${t("team_avg")}</th></tr></thead>
    <tbody>${body.join("")}</tbody></table></div>`;
  $("#leaderboard").querySelectorAll("tr[data-rep]").forEach((tr) =>
    tr.addEventListener("click", () => { setQuery({profile: tr.dataset.rep}); renderRep(); }));
}

async function renderRep(signal = undefined) {
  const id = query().get("profile") || query().get("rep");
  document.querySelectorAll("#leaderboard tr[data-rep]").forEach((tr) =>
    tr.classList.toggle("selected", tr.dataset.rep === id));
  $("#rep-name").textContent = id ? repName(id) : "";
  if (!id) {
    usable("rep", {ok: true});
    $("#rep-page").innerHTML = `<div class="unavailable">${t("pick_rep")}</div>`;
    return;
  }
  const answer = await api(`/v1/reps/${encodeURIComponent(id)}`, {}, true, signal);
  if (!usable("rep", answer)) return;
  const r = answer.data;
  const lines = [["won_value", fmt.money], ["won", fmt.count], ["win_rate", fmt.percent],
                 ["deals", fmt.count], ["open", fmt.count], ["avg_won_value", fmt.money],
                 ["cycle_days_median", fmt.decimal], ["activities", fmt.count],
                 ["leads", fmt.count], ["lead_conversion", fmt.percent]];
  const label = (k) => t(k === "deals" ? "deals_count" : k);
  $("#rep-page").innerHTML = `<div data-testid="rep-page" data-rep="${esc(r.rep)}">
    <p><b>${t("score")} ${fmt.decimal(r.score)}</b> (${t("team_avg")} ${fmt.decimal(r.team_average_score)})
    · ${t("rank")} ${r.rank_team ?? "–"} / ${r.team_reps ?? "–"} · ${esc(r.team ?? "")}</p>
    <table><thead><tr><th>${t("figure")}</th><th>${t("this_rep")}</th><th>${t("team_avg")}</th></tr></thead>
    <tbody>${lines.map(([k, f]) => `<tr><td>${esc(label(k))}</td>
      <td data-testid="rep-${k}" data-value="${esc(r.figures[k] ?? "")}">${f(r.figures[k])}</td>
      <td>${f(r.team_average[k])}</td></tr>`).join("")}</tbody></table>
    <div class="chart" id="rep-chart" style="height:180px"></div></div>`;
  const kinds = Object.keys(r.activities_by_kind);
  chart("rep-chart").setOption({
    color: COLORS, title: {text: t("activities_by_kind"), textStyle: {fontSize: 12}},
    tooltip: {}, grid: {left: 40, right: 10, top: 30, bottom: 24},
    xAxis: {type: "category", data: kinds.map((k) => t("kinds", k))},
    yAxis: {type: "value"},
    series: [{type: "bar", data: kinds.map((k) => r.activities_by_kind[k])}],
  }, true);
}

/** Stalled deals or customers at risk (one row per subject and rule, with its evidence).
 * These endpoints take no filters: the rep and team filters choose rows by owner here. */
function renderFindings(panel, target, answer, field) {
  if (!usable(panel, answer)) return;
  const rep = query().get("rep");
  const team = query().get("team");
  const teamOf = (id) => state.dims?.reps.find((r) => r.id === id)?.team;
  const rows = answer.data[field].filter((r) =>
    (!rep || r.owner === rep) && (!team || teamOf(r.owner) === team));
  $(target).innerHTML = rows.length ? `<div class="scroll">${rows.slice(0, 50).map((r) => `
    <div class="item" data-testid="${panel}-item"><a title="${esc(t("alert_history"))}"
      href="/dashboard/history.html?${new URLSearchParams({subject: r.subject})}"
      data-testid="history-link"><b>${esc(r.subject)}</b></a>
      ${r.facts?.customer ? `<small>${esc(r.facts.customer)}</small>` : ""}
      <span class="sev ${esc(r.severity)}">${esc(t("rules", r.rule))}</span>
      ${r.key_customer ? `<span class="key">${esc(t("key_customer"))}</span>` : ""}
      ${r.facts?.amount ? fmt.money(r.facts.amount) : ""}
      <div class="evidence">${esc(t("evidence"))}: ${esc(r.evidence)}</div>
      <div class="meta">${esc(repName(r.owner))} · ${esc(t("since"))} ${esc(fmt.stamp(r.since))}</div>
    </div>`).join("")}</div>` : `<div class="unavailable">${t("empty")}</div>`;
}

// ---- live alerts ------------------------------------------------------------------------

/** One line of the feed: a transition (opened, resolved, retracted, reopened, acknowledged,
 * snoozed) of an alert. */
function alertLine(kind, alert, at, fresh) {
  const li = document.createElement("li");
  li.dataset.testid = "alert";
  li.dataset.subject = alert.subject;
  if (fresh) li.className = "fresh";
  li.innerHTML = `<span class="sev ${esc(alert.severity)}">${esc(t("transitions", kind))}</span>
    <b>${esc(t("rules", alert.rule))}</b> ${esc(alert.subject)}
    <span class="when">${esc(repName(alert.owner))}</span>
    <div class="evidence">${esc(alert.evidence)}</div>
    <div class="when">${esc(fmt.stamp(at))}</div>`;
  return li;
}

function addAlert(id, kind, alert, at, fresh) {
  if (state.alertsSeen.has(id)) return;
  state.alertsSeen.add(id);
  const list = $("#alerts");
  list.querySelector(".empty")?.remove();
  list.prepend(alertLine(kind, alert, at, fresh));
  while (list.children.length > 100) list.lastElementChild.remove();
}

/** The alert fields the team and rep filters select on. */
function alertScope() {
  const scope = {};
  if (query().get("team")) scope.team = query().get("team");
  if (query().get("rep")) scope.owner = query().get("rep");
  return scope;
}

async function startAlerts() {
  const live = $("#live");
  const list = $("#alerts");
  state.source?.close();  // (re)started when the filters change
  state.alertsSeen.clear();
  list.innerHTML = "";
  const recent = await api("/v1/alerts", {state: "active", limit: "30", ...alertScope()}, false);
  if (recent.status === 404) {
    usable("alerts", recent);
    live.textContent = t("not_available");
    return;
  }
  if (recent.ok) {
    [...recent.data.alerts].reverse().forEach((a) =>
      addAlert(`${a.id}:opened`, "opened", a, a.became_true_at, false));
  }
  if (!list.children.length) list.innerHTML = `<li class="empty">${t("no_alerts")}</li>`;
  live.textContent = t("connecting");
  const onTransition = (data) => {
    const body = JSON.parse(data);
    const scope = alertScope();
    if (Object.entries(scope).some(([k, v]) => body.alert[k] !== v)) return;
    addAlert(body.id, body.kind, body.alert, body.at, true);
    // A transition means the figures moved: redraw soon, and once more a little later,
    // since the projections travel on a consumer of their own and can trail the alert.
    scheduleRefresh(1000);
    clearTimeout(state.followUp);
    state.followUp = setTimeout(() => scheduleRefresh(0), 5000);
  };
  state.source = alertStream(onTransition, (status) => {
    live.classList.toggle("on", status === "open");
    live.textContent = t({open: "live", closed: "not_available"}[status] || "offline");
  });
}

/** Server-sent events over fetch (EventSource cannot send a credential): calls
 * onEvent(data) per event and onStatus("open" | "error" | "closed"); reconnects after a
 * second with Last-Event-ID, so nothing is missed. Returns {close()}. */
function alertStream(onEvent, onStatus) {
  const controller = new AbortController();
  let lastId = null;
  let stopped = false;
  const dispatch = (block) => {
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      const colon = line.indexOf(":");
      if (colon === 0) continue;  // a comment: the server's keep-alive ping
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") lastId = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) onEvent(data.join("\n"));
  };
  (async () => {
    while (!stopped) {
      try {
        const headers = {Accept: "text/event-stream", ...authHeaders()};
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await fetch("/v1/alerts/stream", {headers, signal: controller.signal});
        if (!response.ok) {
          onStatus([401, 403, 404].includes(response.status) ? "closed" : "error");
          if (response.status !== 503) return;
        } else {
          onStatus("open");
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = "";
          for (;;) {
            const {value, done} = await reader.read();
            if (done) break;
            buffer += value;
            let end;
            while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
              dispatch(buffer.slice(0, end));
              buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
            }
          }
          onStatus("error");
        }
      } catch (error) {
        if (stopped) return;
        onStatus("error");
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return {close() { stopped = true; controller.abort(); }};
}

// ---- filters, language, refresh ---------------------------------------------------------

function fillSelect(name, values, label = (v) => v) {
  const select = document.querySelector(`#filters [name="${name}"]`);
  const current = query().get(name) || "";
  const options = [["", t("all")], ...values.map((v) => [v, label(v)])];
  if (current && !values.includes(current)) options.push([current, label(current)]);
  select.innerHTML = options.map(([v, text]) =>
    `<option value="${esc(v)}"${v === current ? " selected" : ""}>${esc(text)}</option>`).join("");
}

/** A rep's credential reads only their own figures and a manager's only their team's (the
 * API enforces it); the page shows who is signed in and locks the filters it may not change. */
function applyScope() {
  const me = state.me;
  if (!me) return;
  const locked = {rep: me.role === "rep" ? me.rep_id : null,
                  team: me.role === "manager" ? me.team_id : null};
  const changes = {};
  for (const [name, value] of Object.entries(locked)) {
    if (value && query().get(name) !== value) changes[name] = value;
  }
  if (Object.keys(changes).length) setQuery(changes, false);
  document.body.dataset.role = me.role;
  const scope = me.role === "rep" ? ` ${me.rep_id}` : me.role === "manager" ? ` ${me.team_id}` : "";
  $("#who").textContent = `${t("signed_in_as")} ${t(`role_${me.role}`)}${scope}`;
  $("#sign-out").hidden = false;
}

function lockScopedFilters() {
  const me = state.me;
  for (const name of ["team", "rep"]) {
    const select = document.querySelector(`#filters [name="${name}"]`);
    select.disabled = (me?.role === "rep") || (me?.role === "manager" && name === "team");
  }
}

function renderFilters() {
  applyScope();
  for (const key of ["from", "to"]) document.querySelector(`#filters [name="${key}"]`).value =
    query().get(key) || "";
  const dims = state.dims || {reps: [], team: [], region: [], source: [], product: []};
  const team = query().get("team");
  fillSelect("team", dims.team);
  fillSelect("rep", dims.reps.filter((r) => !team || r.team === team).map((r) => r.id),
             (id) => `${repName(id)} (${id})`);
  for (const key of ["region", "source", "product"]) fillSelect(key, dims[key]);
  lockScopedFilters();
}

function applyLanguage() {
  t = translator(state.lang);
  fmt = formatters(state.lang, state.display.currency, state.display.timezone);
  document.documentElement.lang = state.lang;
  document.title = t("title");
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  for (const id of Object.keys(state.charts)) { state.charts[id].dispose(); delete state.charts[id]; }
}

async function refresh() {
  // A refresh overtaken by one for other filters (changed while it waited) is cancelled: its
  // answers would draw the old filters over the new, and the server need not compute them.
  // One for the same filters goes on: on a slow server, refreshes that kept cancelling each
  // other would never draw.
  const asked = location.search;
  for (const other of state.refreshing) if (other.asked !== asked) other.controller.abort();
  const mine = {asked, controller: new AbortController()};
  state.refreshing.push(mine);
  try {
    await drawn(mine.controller.signal);
  } catch (error) {
    if (error.name !== "AbortError") throw error;
  } finally {
    state.refreshing = state.refreshing.filter((other) => other !== mine);
  }
}

async function targetsShown(ask, scoped) {
  // Only the targets the panel shows are asked for: a large tenant has hundreds of
  // thousands over a year, a few of each period under way.
  const underWay = await ask("/v1/targets", {...scoped, standing: "under_way"}, false);
  if (!underWay.ok || underWay.data.targets.length) return underWay;
  const over = await ask("/v1/targets", {...scoped, standing: "over"}, false);
  return {...over, latestOver: true};
}

async function drawn(signal) {
  // Targets take only team and rep among the filters (a target's period is its own).
  const scoped = {};
  for (const key of ["team", "rep"]) if (query().get(key)) scoped[key] = query().get(key);
  const ask = (path, extra = {}, withFilters = true) => api(path, extra, withFilters, signal);
  const [funnel, cycle, forecast, revenue, targets, leaders, atRisk, stalled] = await Promise.all([
    ask("/v1/funnel"), ask("/v1/cycle"), ask("/v1/forecast"), ask("/v1/revenue", {by: "month"}),
    targetsShown(ask, scoped),
    ask("/v1/leaderboard", {}, ["from", "to", "team", "rep", "region"]),
    ask("/v1/customers/at-risk", {}, false), ask("/v1/deals/stalled", {}, false)]);
  renderKpis({funnel, cycle, forecast, revenue});
  renderFunnel(funnel);
  renderForecast(forecast);
  renderRevenue(revenue);
  renderTargets(targets);
  renderLeaderboard(leaders);
  renderFindings("at_risk", "#at-risk", atRisk, "customers");
  renderFindings("stalled", "#stalled", stalled, "deals");
  await Promise.all([renderTrends(signal), renderRep(signal)]);
  const updated = $("#updated");
  updated.textContent = `${t("updated")} ${new Intl.DateTimeFormat(state.lang,
    {timeStyle: "medium", timeZone: state.display.timezone}).format(new Date())}`;
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
}

function scheduleRefresh(delay) {
  clearTimeout(state.pending);
  state.pending = setTimeout(() => refresh().finally(armTimer), delay);
}

function armTimer() {
  clearTimeout(state.refreshTimer);
  const seconds = Number(query().get("refresh") ?? 15);
  if (seconds > 0) state.refreshTimer = setTimeout(() => scheduleRefresh(0), seconds * 1000);
}

function wire() {
  const form = $("#filters");
  form.addEventListener("change", (event) => {
    const {name, value} = event.target;
    const changes = {[name]: value};
    if (name === "team") changes.rep = null;  // a rep of another team would select nothing
    if (name === "rep") changes.profile = null;
    setQuery(changes);
    renderFilters();
    if (name === "team" || name === "rep") startAlerts();
    scheduleRefresh(0);
  });
  $("#sign-in-form").addEventListener("submit", (event) => {
    sessionStorage.setItem(KEY, new FormData(event.target).get("key").trim());
    location.reload();
  });
  $("#sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    location.reload();
  });
  $("#reset").addEventListener("click", () => {
    setQuery(Object.fromEntries([...FILTERS, "profile"].map((k) => [k, null])));
    renderFilters();
    startAlerts();
    scheduleRefresh(0);
  });
  $("#lang").addEventListener("click", () => {
    state.lang = LANGS[(LANGS.indexOf(state.lang) + 1) % LANGS.length];
    localStorage.setItem("salespulse.lang", state.lang);
    setQuery({lang: state.lang}, false);
    applyLanguage();
    renderFilters();
    startAlerts();  // its lines, in the new language
    scheduleRefresh(0);
  });
  $("#trend-toggle").addEventListener("click", (event) => {
    const grain = event.target.dataset?.grain;
    if (!grain) return;
    setQuery({trend: grain});
    renderTrends();
  });
  window.addEventListener("popstate", () => { renderFilters(); startAlerts(); scheduleRefresh(0); });
  window.addEventListener("resize", () => Object.values(state.charts).forEach((c) => c.resize()));
}

async function main() {
  if (!query().get("lang") && LANGS.includes(localStorage.getItem("salespulse.lang"))) {
    state.lang = localStorage.getItem("salespulse.lang");
  }
  const [me, display, dims] = await Promise.all([
    api("/v1/me", {}, false), api("/v1/settings/display", {}, false),
    api("/v1/dimensions", {}, false)]);
  if (me.ok) state.me = me.data;
  if (me.ok && me.data.role === "ingest") signIn(t("denied"));
  if (display.ok) state.display = display.data;
  if (dims.ok) state.dims = dims.data;
  applyLanguage();
  renderFilters();
  wire();
  startAlerts();
  await refresh();
  armTimer();
}

main();
