// Standard page: certificates with their expanded-uncertainty bars, the drift fit and its
// prediction band, the tolerance limits, the monitored values, the next calibration and the
// predicted date of leaving tolerance; the control chart with its rule violations.
// Without ?id= it lists the standards. Endpoints: see docs/api.md ("Standards").

import {
  ApiError, api, chartConfig, chartLayout, dateAxis, fmtDate, fmtNumber, fmtReading, h, notConfigured, notice,
  plotTime, session, startPage, t,
} from "./app.js";

const params = new URLSearchParams(location.search);
const id = params.get("id");
const body = () => document.getElementById("standard-body");
const page = { list: null, standard: null, drift: null, control: null, monitored: null };

async function optional(path, options) {
  try {
    return await api(path, options);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

function renderList() {
  const head = ["col.id", "col.details", "standard.nominal", "standard.tolerance", "standard.next_calibration", "standard.leaves_tolerance"];
  body().replaceChildren(
    page.list.length === 0 ? h("p", { class: "notice" }, t("common.none")) :
    h("table", { class: "grid", id: "standards-table" },
      h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
      h("tbody", {}, page.list.map((s) => h("tr", {},
        h("td", {}, h("a", { href: `standard.html?id=${encodeURIComponent(s.id)}` }, s.id)),
        h("td", {}, s.description || s.kind || ""),
        h("td", { class: "num" }, `${fmtNumber(s.nominal)} ${s.unit}`),
        h("td", {}, s.tolerance || "—"),
        h("td", {}, fmtDate(s.calibration_due_ns)),
        h("td", {}, s.predicted_out_of_tolerance_ns ? fmtDate(s.predicted_out_of_tolerance_ns) : t("standard.never")))))));
}

function fact(label, value, id_) {
  return h("div", { class: "fact" }, h("div", { class: "label" }, label), h("div", { class: "mid", id: id_ }, value));
}

function renderStandard() {
  const s = page.standard;
  const evaluation = s.evaluation || {};
  const drift = page.drift || {};
  const inUse = drift.value_in_use
    ? `${fmtNumber(drift.value_in_use.value)} ± ${fmtNumber(drift.value_in_use.expanded_u, 2)} ${s.unit} (k = ${fmtNumber(drift.value_in_use.k, 3)})`
    : evaluation.reference !== undefined && evaluation.reference !== null
      ? `${fmtNumber(evaluation.reference)} ± ${fmtNumber(evaluation.reference_expanded_u, 2)} ${s.unit}`
      : "—";
  const due = drift.calibration_due_ns ?? evaluation.calibration_due_ns ?? s.calibration_due_ns;
  const leaves = drift.predicted_out_of_tolerance_ns ?? evaluation.predicted_out_of_tolerance_ns ?? s.predicted_out_of_tolerance_ns;
  document.getElementById("standard-title").textContent = `${s.id}${s.description ? ` — ${s.description}` : ""}`;
  body().replaceChildren(
    h("section", { class: "facts" },
      fact(t("standard.nominal"), `${fmtNumber(s.nominal)} ${s.unit}`),
      fact(t("standard.tolerance"), s.tolerance || "—"),
      fact(t("standard.value_in_use"), inUse, "value-in-use"),
      fact(t("standard.next_calibration"), fmtDate(due), "next-calibration"),
      fact(t("standard.leaves_tolerance"), leaves ? fmtDate(leaves) : t("standard.never"), "leaves-tolerance")),
    h("h2", {}, t("standard.drift")),
    page.drift ? h("div", { class: "chart", id: "drift-chart" }) : h("p", { class: "notice", id: "no-drift" }, t("standard.no_drift")),
    h("h2", {}, t("standard.control")),
    page.control ? h("div", { class: "chart small", id: "control-chart" }) : h("p", { class: "notice", id: "no-control" }, t("standard.no_control")),
    page.control ? h("p", { class: "caption", id: "violations" }, violationSummary(page.control.violations)) : null,
    h("h2", {}, t("standard.certificates")),
    certificateTable(s.certificates || []),
  );
  if (page.drift) drawDrift(due, leaves);
  if (page.control) drawControl();
}

// "12 rule violation(s): nelson-1 × 3, nelson-5 × 9"
function violationSummary(violations) {
  const counts = {};
  for (const v of violations) counts[v.rule] = (counts[v.rule] || 0) + 1;
  const parts = Object.entries(counts).sort().map(([rule, n]) => `${rule} × ${fmtNumber(n)}`);
  const total = t("standard.violations", { count: fmtNumber(violations.length) });
  return parts.length ? `${total}: ${parts.join(", ")}` : total;
}

function certificateTable(certificates) {
  const head = ["col.number", "col.issuer", "col.calibrated", "col.value", "col.expanded_u", "col.due"];
  return h("table", { class: "grid", id: "certificates" },
    h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
    h("tbody", {}, certificates.map((c) => h("tr", {},
      h("td", {}, c.number), h("td", {}, c.issuer), h("td", {}, fmtDate(c.calibration_ns)),
      h("td", { class: "num" }, fmtReading(c.value, c.expanded_uncertainty / c.coverage_factor)),
      h("td", { class: "num" }, `${fmtNumber(c.expanded_uncertainty, 3)} (${fmtNumber(c.coverage_factor, 3)})`),
      h("td", {}, fmtDate(c.due_ns))))));
}

// A dated event as a vertical line, its label at the top (or the bottom, so two close dates do not
// write over each other).
function verticalLine(ns, label, color, atBottom = false) {
  return {
    shape: { type: "line", xref: "x", yref: "paper", x0: plotTime(ns), x1: plotTime(ns), y0: 0, y1: 1, line: { color, width: 1.5, dash: "dot" } },
    annotation: { xref: "x", yref: "paper", x: plotTime(ns), y: atBottom ? 0 : 1, yanchor: atBottom ? "top" : "bottom",
      xanchor: "left", text: label, showarrow: false, font: { color, size: 11 } },
  };
}

function drawDrift(due, leaves) {
  const s = page.standard;
  const drift = page.drift;
  const curve = drift.curve || [];
  const x = curve.map((p) => plotTime(p.ts_ns));
  const traces = [
    { x, y: curve.map((p) => p.low), mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false, name: "band low" },
    { x, y: curve.map((p) => p.high), mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(111,168,220,0.22)", name: t("chart.band") },
    { x, y: curve.map((p) => p.value), mode: "lines", line: { color: "#6fa8dc", width: 2 }, name: t("chart.fit") },
  ];
  if (page.monitored && page.monitored.length) {
    traces.push({ x: page.monitored.map((p) => plotTime(p.ts_ns)), y: page.monitored.map((p) => p.value), mode: "markers",
      marker: { color: "#9aa5b8", size: 4 }, name: t("chart.monitored") });
  }
  const certificates = s.certificates || [];
  traces.push({
    x: certificates.map((c) => plotTime(c.calibration_ns)), y: certificates.map((c) => c.value), mode: "markers",
    marker: { color: "#e9c46a", size: 9, symbol: "diamond" }, name: t("chart.certificates"),
    error_y: { type: "data", array: certificates.map((c) => c.expanded_uncertainty), visible: true, color: "#e9c46a", thickness: 1.5, width: 6 },
  });
  const tolerance = drift.tolerance || [];
  if (tolerance.length) {
    const tx = tolerance.map((p) => plotTime(p.ts_ns));
    traces.push({ x: tx, y: tolerance.map((p) => p.low), mode: "lines", line: { color: "#e76f51", dash: "dash" }, name: t("chart.tolerance_low") });
    traces.push({ x: tx, y: tolerance.map((p) => p.high), mode: "lines", line: { color: "#e76f51", dash: "dash" }, name: t("chart.tolerance_high") });
  }
  const marks = [];
  if (due) marks.push(verticalLine(due, t("chart.next_calibration"), "#a3be8c"));
  if (leaves) marks.push(verticalLine(leaves, t("chart.leaves_tolerance"), "#e76f51", true));
  const layout = chartLayout({
    margin: { l: 70, r: 20, t: 28, b: 40 }, // room for the date labels above the plot
    xaxis: dateAxis(),
    yaxis: { gridcolor: "#3b4252", zeroline: false, exponentformat: "none", automargin: true, title: { text: s.unit } },
    shapes: marks.map((m) => m.shape), annotations: marks.map((m) => m.annotation),
  });
  window.Plotly.newPlot("drift-chart", traces, layout, chartConfig());
  document.getElementById("drift-chart").dataset.traces = String(traces.length);
}

function drawControl() {
  const control = page.control;
  const points = control.points || [];
  const x = points.map((p) => plotTime(p.ts_ns));
  const flat = (value) => points.map(() => value);
  const flagged = new Set((control.violations || []).map((v) => v.ts_ns));
  const rules = {};
  for (const v of control.violations || []) (rules[v.ts_ns] ||= []).push(v.rule);
  const violating = points.filter((p) => flagged.has(p.ts_ns));
  const traces = [
    { x, y: points.map((p) => p.value), mode: "lines+markers", marker: { size: 4 }, line: { color: "#6fa8dc", width: 1 }, name: t("chart.value") },
    { x, y: flat(control.center), mode: "lines", line: { color: "#a3be8c" }, name: t("chart.center") },
    { x, y: flat(control.ucl), mode: "lines", line: { color: "#e76f51", dash: "dash" }, name: t("chart.ucl") },
    { x, y: flat(control.lcl), mode: "lines", line: { color: "#e76f51", dash: "dash" }, name: t("chart.lcl") },
    { x: violating.map((p) => plotTime(p.ts_ns)), y: violating.map((p) => p.value), mode: "markers",
      marker: { color: "#e76f51", size: 10, symbol: "circle-open", line: { width: 2 } },
      hovertext: violating.map((p) => rules[p.ts_ns].join(", ")), hoverinfo: "x+y+text",
      name: t("chart.violation") },
  ];
  window.Plotly.newPlot("control-chart", traces, chartLayout({ xaxis: dateAxis() }), chartConfig());
}

async function monitoredValues(s, drift) {
  const own = await optional(`/api/v1/standards/${encodeURIComponent(s.id)}/monitored`);
  if (own) return own;
  // Fallback: the first linked channel's history, converted to the standard's value.
  const link = (s.channels || [])[0];
  if (!link || !drift || !(drift.curve || []).length) return null;
  const start = new Date(drift.curve[0].ts_ns / 1e6).toISOString();
  const end = new Date(Math.min(Date.now(), drift.curve[drift.curve.length - 1].ts_ns / 1e6)).toISOString();
  if (start >= end) return null;
  const site = link.site || session.me.site;
  const history = await optional(
    `/api/v1/channels/${[site, link.agent, link.instrument, link.channel].map(encodeURIComponent).join("/")}/history`,
    { params: { start, end, max_points: 500 } });
  if (!history) return null;
  const scale = link.scale ?? 1;
  const offset = link.offset ?? 0;
  return history.points.filter((p) => p.value !== null).map((p) => ({ ts_ns: p.ts_ns, value: p.value * scale + offset }));
}

async function draw() {
  if (page.standard) renderStandard();
  else if (page.list) renderList();
}

startPage("standard.html", async () => {
  page.list = await optional("/api/v1/standards");
  if (page.list === null) {
    notConfigured(body(), "nav.standards");
    return;
  }
  session.onLanguage.push(draw);
  if (!id) {
    renderList();
    return;
  }
  const path = `/api/v1/standards/${encodeURIComponent(id)}`;
  page.standard = await optional(path);
  if (page.standard === null) {
    notice(body(), `${id}: ${t("standard.not_found")}`, "error");
    return;
  }
  [page.drift, page.control] = await Promise.all([optional(`${path}/drift`), optional(`${path}/control`)]);
  page.monitored = await monitoredValues(page.standard, page.drift);
  renderStandard();
}).catch((error) => notice(body(), t("common.error", { reason: error.message }), "error"));
