// Audit log: filter, page back through older entries, export for an audit (CSV or JSON).

import { ApiError, api, download, fmtTime, h, notice, session, startPage, t } from "./app.js";
import { actionName } from "./i18n.js";

const page = { entries: [], done: false };
const body = () => document.getElementById("audit-body");

function filters() {
  const form = new FormData(document.getElementById("audit-filters"));
  const out = {};
  for (const name of ["actor", "action", "subject_prefix"]) {
    const value = String(form.get(name) || "").trim();
    if (value) out[name] = value;
  }
  const start = String(form.get("start") || "");
  if (start) out.start = new Date(start).toISOString(); // the browser's local time → UTC
  return out;
}

async function load(more = false) {
  const params = { ...filters(), limit: 200 };
  if (more && page.entries.length) params.before_id = page.entries[page.entries.length - 1].id;
  const found = await api("/api/v1/audit", { params });
  page.entries = more ? page.entries.concat(found) : found;
  page.done = found.length < 200;
  render();
}

function detailsText(details) {
  return Object.entries(details || {})
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(" · ");
}

function render() {
  if (!page.entries.length) {
    notice(body(), t("audit.empty"));
    return;
  }
  const head = ["col.time", "col.actor", "col.action", "col.subject", "col.details"];
  const more = page.done ? [] : [h("p", {}, h("button", { type: "button", onclick: () => load(true).catch(showError) }, t("audit.more")))];
  body().replaceChildren(
    h("table", { class: "grid", id: "audit-table" },
      h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
      h("tbody", {}, page.entries.map((e) => h("tr", { "data-id": e.id },
        h("td", { class: "num" }, fmtTime(e.ts_ns)), h("td", {}, e.actor), h("td", { "data-action": e.action }, actionName(e.action, session.lang)), h("td", {}, e.subject),
        h("td", { class: "details" }, detailsText(e.details)))))),
    ...more);
}

// The ledger that makes the records tamper-evident: its head, the last verification, and a
// verification on request (GET /api/v1/records/verify: auditors and above).
const records = { state: null, report: null, busy: false, error: null };
const recordsBody = () => document.getElementById("records-body");

async function loadRecords() {
  try {
    records.state = await api("/api/v1/records", { params: { lang: session.lang } });
  } catch (error) {
    records.error = error instanceof ApiError && error.status === 409 ? null : error.message;
  }
  renderRecords();
}

async function verifyNow() {
  records.busy = true;
  renderRecords();
  try {
    records.report = await api("/api/v1/records/verify", { params: { lang: session.lang } });
    records.error = null;
    records.state = await api("/api/v1/records", { params: { lang: session.lang } });
  } catch (error) {
    records.error = error instanceof ApiError && error.status === 403 ? t("auth.forbidden") : error.message;
  }
  records.busy = false;
  renderRecords();
}

function renderRecords() {
  const state = records.state;
  if (!state) {
    recordsBody().replaceChildren(records.error ? h("p", { class: "notice error" }, records.error) : h("p", {}, t("common.loading")));
    return;
  }
  const last = state.last_verification;
  const report = records.report;
  const ok = report ? report.ok : last ? last.ok : null;
  const summary = report ? report.summary : last ? last.summary : t("records.never");
  const checked = report ? report.checked_ns : last ? last.checked_ns : null;
  const fact = (label, value, id_) => h("div", { class: "fact" }, h("div", { class: "label" }, label), h("div", { class: "mid", id: id_ }, value));
  recordsBody().replaceChildren(
    h("section", { class: "facts" },
      fact(t("records.ledger"), state.ledger || "—", "records-ledger"),
      fact(t("records.entries"), String(state.entries), "records-entries"),
      fact(t("records.unsigned"), String(state.unsigned), "records-unsigned"),
      fact(t("records.key"), state.key || "—", "records-key"),
      fact(t("records.last"), ok === null ? t("records.never") : `${t(ok ? "records.ok" : "records.broken")} (${fmtTime(checked)})`, "records-status")),
    h("p", { id: "records-summary", class: ok === false ? "bad" : null }, summary),
    ...(report && report.findings_text && report.findings_text.length > 1
      ? [h("ul", { id: "records-findings" }, report.findings_text.slice(1).map((text) => h("li", {}, text)))] : []),
    records.error ? h("p", { class: "notice error" }, records.error) : null,
    h("p", {}, h("button", { type: "button", id: "records-verify", disabled: records.busy, onclick: () => verifyNow() },
      t(records.busy ? "records.verifying" : "records.verify"))));
}

function showError(error) {
  notice(body(), t("common.error", { reason: error.message }), "error");
}

startPage("audit.html", async () => {
  const form = document.getElementById("audit-filters");
  form.addEventListener("submit", (event) => { event.preventDefault(); load().catch(showError); });
  for (const format of ["csv", "json"]) {
    document.getElementById(`audit-${format}`).addEventListener("click", () =>
      download("/api/v1/audit", { ...filters(), limit: 100000, format }, `audit-log.${format}`).catch(showError));
  }
  session.onLanguage.push(render);
  session.onLanguage.push(() => { records.report = null; loadRecords(); });
  loadRecords();
  await load();
}).catch(showError);
