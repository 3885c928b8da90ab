// A deal's or customer's alert history: every alert on it, who was told, when, through
// what, and what they did (GET /v1/alerts/history?subject=).
import {LANGS, credential, defaultLang, esc, words} from "./alerting-i18n.js";
import {translator} from "./i18n.js";

const $ = (sel) => document.querySelector(sel);
const headers = {Accept: "application/json", ...credential()};
let lang = defaultLang();
if (!new URLSearchParams(location.search).get("lang")
    && LANGS.includes(localStorage.getItem("salespulse.lang"))) {
  lang = localStorage.getItem("salespulse.lang");
}
let answer = null;

function render() {
  const w = words(lang);
  const t = translator(lang);  // the dashboard's names of rules and transitions
  const when = (at) => (at ? new Intl.DateTimeFormat(lang, {dateStyle: "medium",
                                                             timeStyle: "short"}).format(new Date(at)) : "");
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-w]").forEach((el) => { el.textContent = w(el.dataset.w); });
  if (!answer) return;
  if (!answer.alerts.length) {
    $("#history").innerHTML = `<p class="note">${esc(w("no_alerts"))}</p>`;
    return;
  }
  $("#history").innerHTML = answer.alerts.map((a) => `
    <section class="alert-card" data-testid="history-alert" data-state="${esc(a.state)}">
      <h2><span class="sev ${esc(a.severity)}">${esc(t("rules", a.rule))}</span>
        ${esc(a.subject)} · ${esc(t("transitions", a.state))}</h2>
      <div class="evidence">${esc(a.evidence)}</div>
      <b>${esc(w("transitions"))}</b><ul>${a.transitions.map((x) =>
        `<li>${esc(t("transitions", x.kind))} · ${esc(when(x.at))}</li>`).join("")}</ul>
      <b>${esc(w("deliveries"))}</b><ul data-testid="deliveries">${a.deliveries.map((d) =>
        `<li>${esc(d.recipient)} · ${esc(d.channel)} · ${esc(t("transitions", d.kind))} · `
        + `${esc(when(d.at))} · ${esc(d.outcome)}</li>`)
        .join("") || `<li>—</li>`}</ul>
      <b>${esc(w("actions"))}</b><ul data-testid="actions">${a.actions.map((x) =>
        `<li>${esc(x.by ?? "")} ${esc(w("did", x.kind))} · ${esc(when(x.at))} · ${esc(w(`via_${x.via}`))}</li>`)
        .join("") || `<li>${esc(w("nobody"))}</li>`}</ul>
    </section>`).join("");
}

async function show(subject) {
  if (!subject) { render(); return; }
  $("#pick").subject.value = subject;
  const response = await fetch(`/v1/alerts/history?${new URLSearchParams({subject})}`, {headers});
  answer = response.ok ? await response.json() : {alerts: []};
  render();
}

$("#pick").addEventListener("submit", (event) => {
  event.preventDefault();
  const subject = event.target.subject.value.trim();
  history.replaceState(null, "", `${location.pathname}?${new URLSearchParams({subject})}`);
  show(subject);
});
$("#lang").addEventListener("click", () => {
  lang = LANGS[(LANGS.indexOf(lang) + 1) % LANGS.length];
  localStorage.setItem("salespulse.lang", lang);
  render();
});
show(new URLSearchParams(location.search).get("subject"));
