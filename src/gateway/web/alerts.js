// Alerts page: the list, acknowledge with a comment, comment, shelve, and each alert's audit
// trail. Endpoints: see docs/api.md ("Alerts"); the trail is the audit log of subject alert:{id}.

import {
  ApiError, api, download, fmtReading, fmtTime, h, notConfigured, notice, session, startPage, t,
} from "./app.js";
import { actionName } from "./i18n.js";

const SHELVE_FOR = [["1h", 3600], ["8h", 28800], ["24h", 86400], ["7d", 604800]];
const ACKNOWLEDGEABLE = ["active_unacknowledged", "returned_unacknowledged"];
const page = { filter: "open", alerts: [], open: new Set(), trails: new Map() };
const body = () => document.getElementById("alerts-body");

function canOperate() {
  return session.me && (session.me.role === "operator" || session.me.role === "admin");
}

function message(alert) {
  const texts = alert.messages || {};
  return texts[session.lang] || alert.message || alert.subject;
}

async function load() {
  page.alerts = await api("/api/v1/alerts", { params: { state: page.filter } });
  for (const alertId of page.open) page.trails.set(alertId, await trail(alertId));
  render();
}

async function trail(alertId) {
  return api("/api/v1/audit", { params: { subject: `alert:${alertId}`, order: "asc", limit: 500 } });
}

function renderToolbar() {
  document.getElementById("alerts-toolbar").replaceChildren(
    ...[["open", "alerts.filter.open"], ["all", "alerts.filter.all"]].map(([filter, key]) =>
      h("button", { type: "button", class: page.filter === filter ? "current" : null, "data-filter": filter,
        onclick: () => { page.filter = filter; load().catch(showError); } }, t(key))),
    h("span", { class: "spacer" }),
    h("button", { type: "button", onclick: () => download("/api/v1/alerts", { state: "all", format: "csv" }, "alerts.csv").catch(showError) }, t("common.export_csv")),
  );
}

function actions(alert) {
  if (!canOperate()) return null;
  const comment = h("textarea", { class: "comment", rows: 1, placeholder: t("alerts.comment_placeholder"), "data-alert": alert.id });
  const duration = h("select", { class: "shelve-for" },
    SHELVE_FOR.map(([name, seconds]) => h("option", { value: seconds }, t(`duration.${name}`))));
  const status = h("span", { class: "muted action-status" });
  const act = (verb, payload) => async () => {
    const text = comment.value.trim();
    if (!text) {
      status.textContent = t("alerts.comment_required");
      comment.focus();
      return;
    }
    try {
      await api(`/api/v1/alerts/${encodeURIComponent(alert.id)}/${verb}`, { method: "POST", body: payload(text) });
      status.textContent = t("alerts.done");
      page.open.add(alert.id);
      await load();
    } catch (error) {
      status.textContent = error instanceof ApiError && error.status === 403 ? t("auth.forbidden") : t("common.error", { reason: error.message });
    }
  };
  const shelved = alert.shelved_until_ns && alert.shelved_until_ns > Date.now() * 1e6;
  return h("div", { class: "alert-actions" },
    comment,
    ACKNOWLEDGEABLE.includes(alert.state)
      ? h("button", { type: "button", class: "primary acknowledge", onclick: act("ack", (c) => ({ comment: c })) }, t("alerts.acknowledge"))
      : null,
    h("button", { type: "button", class: "add-comment", onclick: act("comment", (c) => ({ comment: c })) }, t("alerts.comment")),
    shelved
      ? h("button", { type: "button", class: "unshelve", onclick: act("unshelve", (c) => ({ comment: c })) }, t("alerts.unshelve"))
      : h("span", {}, duration, " ",
          h("button", { type: "button", class: "shelve", onclick: act("shelve", (c) => ({ reason: c, duration_s: Number(duration.value) })) }, t("alerts.shelve"))),
    status);
}

function trailList(alertId) {
  const entries = page.trails.get(alertId) || [];
  return h("ol", { class: "trail", "data-alert": alertId },
    entries.map((e) => h("li", {},
      `${fmtTime(e.ts_ns)} — ${e.actor}: ${actionName(e.action, session.lang)}`,
      e.details && (e.details.comment || e.details.reason) ? ` — “${e.details.comment || e.details.reason}”` : "")));
}

function row(alert) {
  const shelved = alert.shelved_until_ns && alert.shelved_until_ns > Date.now() * 1e6;
  const details = h("details", { "data-alert": alert.id, open: page.open.has(alert.id) || null },
    h("summary", {}, t("alerts.trail")), trailList(alert.id));
  details.addEventListener("toggle", async () => {
    if (details.open) {
      page.open.add(alert.id);
      page.trails.set(alert.id, await trail(alert.id).catch(() => []));
      details.replaceChildren(details.firstChild, trailList(alert.id));
    } else {
      page.open.delete(alert.id);
    }
  });
  return h("tr", { class: `alert-row severity-${alert.severity}`, "data-alert": alert.id, "data-state": alert.state },
    h("td", {}, h("span", { class: `status severity-badge-${alert.severity}` }, t(`alerts.severity.${alert.severity}`))),
    h("td", {},
      h("div", { class: "message" }, message(alert)),
      h("div", { class: "muted" }, alert.subject,
        alert.value !== undefined && alert.value !== null ? ` · ${fmtReading(alert.value)} ${alert.unit || ""}` : ""),
      alert.acked_by ? h("div", { class: "muted" }, t("alerts.acked_by", { who: alert.acked_by }),
        alert.ack_comment ? ` — “${alert.ack_comment}”` : "") : null,
      shelved ? h("div", { class: "muted" }, t("alerts.shelved_until", { time: fmtTime(alert.shelved_until_ns) })) : null,
      actions(alert),
      details),
    h("td", {}, t(`alerts.state.${alert.state}`)),
    h("td", {}, fmtTime(alert.active_since_ns ?? alert.raised_wall_ns ?? alert.updated_ns)));
}

function render() {
  renderToolbar();
  if (!page.alerts.length) {
    notice(body(), t("alerts.empty"), "ok");
    return;
  }
  const head = ["col.severity", "col.message", "col.state", "col.since"];
  body().replaceChildren(h("table", { class: "grid", id: "alerts-table" },
    h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
    h("tbody", {}, page.alerts.map(row))));
}

function showError(error) {
  notice(body(), t("common.error", { reason: error.message }), "error");
}

startPage("alerts.html", async () => {
  try {
    await load();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      notConfigured(body(), "nav.alerts");
      return;
    }
    throw error;
  }
  session.onLanguage.push(render);
  setInterval(() => {
    // Do not redraw under someone typing a comment.
    if (document.activeElement && document.activeElement.tagName === "TEXTAREA") return;
    load().catch(showError);
  }, 10000);
}).catch(showError);
