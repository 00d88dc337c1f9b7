// Calibrations page: the runs the benches recorded (newest first) and, with ?run=, one run drawn —
// the error of each point with its expanded uncertainty against the tolerance band (± MPE), the
// results table, and the report (English, Vietnamese) and the DCC to download. Everything comes
// from GET /api/v1/calibrations[/{run}] (see docs/api.md "Calibrations"): nothing is computed here.

import {
  ApiError, api, chartConfig, chartLayout, download, fmtNumber, fmtTime, h, notConfigured, notice,
  session, startPage, t,
} from "./app.js";

const params = new URLSearchParams(location.search);
const run = params.get("run");
const body = () => document.getElementById("calibrations-body");
const page = { list: null, run: null };

function decisionText(decision) {
  return t(`calibrations.decision.${decision}`);
}

function decisionCell(decision) {
  return h("td", { class: `decision ${decision}`, "data-decision": decision }, decisionText(decision));
}

function renderList() {
  if (page.list.length === 0) {
    body().replaceChildren(h("p", { class: "notice", id: "no-calibrations" }, t("calibrations.empty")));
    return;
  }
  const head = ["calibrations.run", "calibrations.started", "calibrations.procedure", "calibrations.uut",
    "calibrations.points", "calibrations.decision"];
  body().replaceChildren(
    h("table", { class: "grid", id: "calibrations-table" },
      h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
      h("tbody", {}, page.list.map((c) => h("tr", { "data-run": c.run },
        h("td", {}, h("a", { href: `calibrations.html?run=${encodeURIComponent(c.run)}` }, c.run)),
        h("td", { class: "num" }, fmtTime(c.started_ns)),
        h("td", {}, c.procedure_id),
        h("td", {}, c.uut_serial || "—"),
        h("td", { class: "num" }, c.failed_points ? `${c.points} (${c.failed_points} ✗)` : String(c.points)),
        decisionCell(c.decision))))));
}

function fact(label, value, id_) {
  return h("div", { class: "fact" }, h("div", { class: "label" }, label), h("div", { class: "mid", id: id_ }, value));
}

function drawChart(record) {
  const points = record.points.filter((p) => p.status === "ok");
  const unit = record.uut.unit;
  const x = points.map((p) => p.nominal);
  const traces = [];
  const band = points.filter((p) => p.tolerance).slice().sort((a, b) => a.nominal - b.nominal);
  if (band.length) {
    traces.push({ x: band.map((p) => p.nominal), y: band.map((p) => p.tolerance.upper), mode: "lines",
      line: { color: "#a3be8c", width: 1 }, name: t("calibrations.mpe_upper") });
    traces.push({ x: band.map((p) => p.nominal), y: band.map((p) => p.tolerance.lower), mode: "lines",
      line: { color: "#a3be8c", width: 1 }, fill: "tonexty", fillcolor: "rgba(163,190,140,0.18)",
      name: t("calibrations.mpe_lower") });
  }
  const colours = { pass: "#a3be8c", conditional_pass: "#ebcb8b", conditional_fail: "#d08770", fail: "#e76f51" };
  traces.push({
    x, y: points.map((p) => p.error), mode: "markers", name: t("calibrations.error"),
    marker: { size: 9, color: points.map((p) => colours[p.verdict ? p.verdict.decision : "fail"]) },
    error_y: { type: "data", array: points.map((p) => p.budget.expanded_uncertainty), visible: true, thickness: 1.5, width: 6 },
    text: points.map((p) => `${p.rounded.text} — ${decisionText(p.verdict.decision)}`), hoverinfo: "x+text",
  });
  const layout = chartLayout({
    xaxis: { title: { text: `${t("calibrations.nominal")} (${unit})` }, gridcolor: "#3b4252", zeroline: false, automargin: true },
    yaxis: { title: { text: `${t("calibrations.error")} (${unit})` }, gridcolor: "#3b4252", zeroline: true,
      zerolinecolor: "#6b7488", exponentformat: "SI", automargin: true },
  });
  window.Plotly.newPlot("calibration-chart", traces, layout, chartConfig());
  document.getElementById("calibration-chart").dataset.points = String(points.length);
}

function renderRun() {
  const envelope = page.run;
  const record = envelope.record;
  const uut = record.uut;
  const identity = uut.identity_start || {};
  const reference = record.reference;
  const certificate = reference.certificate;
  const rows = record.points.map((p) => {
    if (p.status !== "ok") {
      return h("tr", { "data-index": p.index, class: "failed" },
        h("td", { class: "num" }, String(p.index + 1)), h("td", { class: "num" }, `${fmtNumber(p.nominal)} ${p.unit}`),
        h("td", { colspan: 4, class: "reason" }, t("calibrations.not_measured", { reason: p.reason })));
    }
    return h("tr", { "data-index": p.index },
      h("td", { class: "num" }, String(p.index + 1)),
      h("td", { class: "num" }, `${fmtNumber(p.nominal)} ${p.unit}`),
      h("td", { class: "num" }, `${fmtNumber(p.reference_value)} ${p.unit}`),
      h("td", { class: "num" }, p.rounded.text),
      h("td", { class: "num" }, p.tolerance ? `± ${fmtNumber(p.tolerance.mpe, 3)} ${p.unit}` : "—"),
      decisionCell(p.verdict.decision));
  });
  const head = ["calibrations.point", "calibrations.nominal", "calibrations.reference_value", "calibrations.error_u",
    "calibrations.mpe", "calibrations.decision"];
  const save = (path, name) => () => download(path, {}, name).catch(showError);
  const base = `/api/v1/calibrations/${encodeURIComponent(record.run)}`;
  body().replaceChildren(
    h("p", {}, h("a", { href: "calibrations.html", id: "back" }, `← ${t("common.back")}`)),
    h("h2", { id: "run-title" }, `${record.procedure.title} — ${record.run}`),
    h("div", { class: "facts" },
      fact(t("calibrations.uut"), `${uut.description} · ${identity.manufacturer || ""} ${identity.model || ""} · ${identity.serial || uut.declared.serial || "—"}`, "fact-uut"),
      fact(t("calibrations.operator"), record.operator),
      fact(t("calibrations.started"), fmtTime(record.started_ns)),
      fact(t("calibrations.reference"), `${reference.description} (${reference.name})${certificate ? ` · ${certificate.number}` : ""}`, "fact-reference"),
      fact(t("calibrations.decision"), decisionText(record.decision), "fact-decision"),
      fact("SHA-256", h("code", {}, envelope.sha256.slice(0, 16) + "…"))),
    h("div", { class: "actions" },
      h("button", { type: "button", id: "report-en", onclick: save(`${base}/report?lang=en`, `${record.run}.en.html`) }, t("calibrations.report_en")),
      h("button", { type: "button", id: "report-vi", onclick: save(`${base}/report?lang=vi`, `${record.run}.vi.html`) }, t("calibrations.report_vi")),
      h("button", { type: "button", id: "dcc", onclick: save(`${base}/dcc`, `${record.run}.dcc.xml`) }, t("calibrations.dcc"))),
    h("h3", {}, t("calibrations.chart")),
    h("div", { id: "calibration-chart", class: "chart" }),
    h("table", { class: "grid", id: "points-table" },
      h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
      h("tbody", {}, rows)),
  );
  drawChart(record);
}

function showError(error) {
  notice(body(), t("common.error", { reason: error.message }), "error");
}

async function draw() {
  if (page.run) renderRun();
  else if (page.list) renderList();
}

startPage("calibrations.html", async () => {
  try {
    if (run) page.run = await api(`/api/v1/calibrations/${encodeURIComponent(run)}`);
    else page.list = await api("/api/v1/calibrations");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404 && !run) {
      notConfigured(body(), "nav.calibrations");
      return;
    }
    throw error;
  }
  session.onLanguage.push(draw);
  await draw();
}).catch(showError);
