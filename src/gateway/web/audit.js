// Audit log: filter, page back through older entries, export for an audit (CSV or JSON).

import { api, download, fmtTime, h, notice, session, startPage, t } from "./app.js";
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
  await load();
}).catch(showError);
