// Standard page: certificates with their expanded-uncertainty bars, each drift fit and its
// prediction band carried on to the date it forecasts, the tolerance limits, the monitored period
// means, the value in use, the next calibration and the predicted date of leaving tolerance; the
// control charts of the monitored channels with their rule signals; the linked channels.
// Without ?id= it lists the standards. Everything drawn is shaped by the gateway
// (GET /api/v1/standards/{id}/chart, see docs/api.md "Standards"): no statistics here.

import {
  ApiError, api, channelPage, chartConfig, chartLayout, dateAxis, download, fmtDate, fmtNumber, fmtReading, fmtTime, h,
  notConfigured, notice, plotTime, session, startPage, t,
} from "./app.js";

const params = new URLSearchParams(location.search);
const id = params.get("id");
const body = () => document.getElementById("standard-body");
const page = { list: null, standard: null, chart: null };

async function optional(path, options) {
  try {
    return await api(path, options);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

// The predicted date of leaving tolerance: a date, "not within the horizon", or not evaluated.
function leavesText(evaluated, ns) {
  if (!evaluated) return t("standard.not_evaluated");
  return ns ? fmtDate(ns) : t("standard.never");
}

function renderList() {
  if (page.list.length === 0) {
    body().replaceChildren(h("p", { class: "notice", id: "no-standards" }, t("standard.empty")));
    return;
  }
  const head = ["col.id", "col.details", "standard.nominal", "standard.tolerance", "standard.next_calibration", "standard.leaves_tolerance"];
  body().replaceChildren(
    h("table", { class: "grid", id: "standards-table" },
      h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
      h("tbody", {}, page.list.map((s) => h("tr", { "data-standard": s.id, class: s.status === "retired" ? "retired" : null },
        h("td", {}, h("a", { href: `standard.html?id=${encodeURIComponent(s.id)}` }, s.id)),
        h("td", {}, s.description || s.kind || ""),
        h("td", { class: "num" }, `${fmtNumber(s.nominal)} ${s.unit}`),
        h("td", {}, s.tolerance || "—"),
        h("td", { class: "due" }, fmtDate(s.due_ns)),
        h("td", { class: "leaves" }, leavesText(s.evaluated_ns !== null, s.predicted_out_of_tolerance_ns)))))));
}

function fact(label, value, id_) {
  return h("div", { class: "fact" }, h("div", { class: "label" }, label), h("div", { class: "mid", id: id_ }, value));
}

function renderStandard() {
  const s = page.standard;
  const chart = page.chart;
  const listed = (page.list || []).find((item) => item.id === s.id) || {};
  const latest = (s.certificates || []).at(-1);
  const inUse = chart && chart.value_in_use;
  const inUseText = inUse
    ? `${fmtReading(inUse.value, inUse.expanded_uncertainty / inUse.coverage_factor)} ± ${fmtNumber(inUse.expanded_uncertainty, 2)} ${s.unit} (k = ${fmtNumber(inUse.coverage_factor, 3)})`
    : "—";
  const measured = chart && chart.measured;
  const measuredText = measured ? `${fmtReading(measured.value, measured.u)} ${s.unit} (${fmtTime(measured.ts_ns)})` : "—";
  const due = chart ? chart.calibration_due_ns : latest ? latest.due_ns : null;
  const leaves = chart ? chart.predicted_out_of_tolerance_ns : null;
  document.getElementById("standard-title").textContent = `${s.id}${s.description ? ` — ${s.description}` : ""}`;
  body().replaceChildren(
    h("section", { class: "facts" },
      fact(t("standard.nominal"), `${fmtNumber(s.nominal)} ${s.unit}`),
      fact(t("standard.tolerance"), (chart && chart.tolerance) || listed.tolerance || "—", "tolerance"),
      fact(t("standard.value_in_use"), inUseText, "value-in-use"),
      fact(t("standard.measured"), measuredText, "measured"),
      fact(t("standard.next_calibration"), fmtDate(due), "next-calibration"),
      fact(t("standard.leaves_tolerance"), leavesText(chart !== null, leaves), "leaves-tolerance")),
    chart ? h("p", { class: "caption", id: "evaluated" }, t("standard.evaluated", { time: fmtTime(chart.evaluated_ns) })) : null,
    h("h2", {}, t("standard.drift")),
    chart ? h("div", { class: "chart", id: "drift-chart" }) : h("p", { class: "notice", id: "no-drift" }, t("standard.no_evaluation")),
    h("h2", {}, t("standard.control")),
    chart && chart.control.length
      ? h("div", { id: "control-charts" }, chart.control.flatMap((c, i) => [
        h("p", { class: "caption" }, c.channel),
        h("div", { class: "chart small control-chart", id: `control-chart-${i}` }),
        h("p", { class: "caption violations", id: `violations-${i}` }, violationSummary(c.violations))]))
      : h("p", { class: "notice", id: "no-control" }, t("standard.no_control")),
    h("h2", {}, t("standard.certificates")),
    certificateTable(s.certificates || []),
    ...(s.certificates || []).filter((c) => (c.points || []).length).map((c) => pointTable(c)),
    h("h2", {}, t("standard.channels")),
    channelTable(s.channels || []),
  );
  if (chart) drawDrift();
  if (chart) chart.control.forEach((c, i) => drawControl(c, `control-chart-${i}`));
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
  const head = ["col.number", "col.issuer", "col.calibrated", "col.value", "col.expanded_u", "col.due", "col.file", "col.dcc", "col.signature"];
  return h("table", { class: "grid", id: "certificates" },
    h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
    h("tbody", {}, certificates.map((c) => h("tr", { "data-certificate": c.id },
      h("td", {}, c.number), h("td", {}, c.issuer), h("td", {}, fmtDate(c.calibration_ns)),
      // The value exactly as registered (the DCC's decimal text), U and k likewise.
      h("td", { class: "num", title: fmtReading(c.value, c.expanded_uncertainty / c.coverage_factor) }, c.value_text),
      h("td", { class: "num" }, `${c.expanded_uncertainty_text} (${c.coverage_factor_text})`),
      h("td", {}, fmtDate(c.due_ns)),
      h("td", { class: c.file && c.file.state !== "ok" ? "bad" : null },
        c.file ? `${c.file.name} (${t(`file.${c.file.state || "unchecked"}`)})` : "—"),
      h("td", { class: "dcc" }, dccLinks(c)),
      h("td", { class: `signature ${signatureClass(c.signature)}` }, signatureText(c.signature))))));
}

const certificatePath = (c) => `/api/v1/standards/${encodeURIComponent(page.standard.id)}/certificates/${c.id}`;

function dccLinks(c) {
  const links = [];
  if (c.file && c.file.media_type === "application/xml") {
    links.push(h("button", { type: "button", class: "link dcc-original",
      onclick: () => download(`${certificatePath(c)}/file`, {}, c.file.name).catch(showError) }, t("dcc.original")));
  }
  links.push(h("button", { type: "button", class: "link dcc-export",
    onclick: () => download(`${certificatePath(c)}/dcc`, {}, `${c.number}.xml`).catch(showError) }, t("dcc.export")));
  return links;
}

function signatureClass(signature) {
  if (!signature) return "";
  return { valid: "good", invalid: "bad", untrusted: "warn", unsigned: "" }[signature.status] || "";
}

function signatureText(signature) {
  if (!signature) return t("dcc.none");
  const signer = signature.signer ? signature.signer.subject : "—";
  const parts = [t(`signature.${signature.status}`, { signer, reason: signature.reason || "" })];
  if (signature.checked_at) parts.push(t("signature.checked", { time: fmtTime(Date.parse(signature.checked_at) * 1e6) }));
  if (signature.accepted_by) parts.push(t("signature.accepted", { who: signature.accepted_by }));
  return parts.join(" · ");
}

// A DCC text ({content: [{lang, text}]}) in the reader's language, else neutral, else English.
function dccText(text) {
  if (!text || !text.content) return "";
  for (const wanted of [session.lang, null, "en"]) {
    const found = text.content.find((c) => (c.lang ?? null) === wanted);
    if (found) return found.text;
  }
  return text.content[0].text;
}

function conditionText(condition) {
  const v = condition.value || {};
  return `${dccText(condition.name) || (condition.ref_types || []).join(" ")}: ${v.value} ${condition.symbol || ""}`.trim();
}

function pointTable(c) {
  const head = ["dcc.result", "col.value", "col.expanded_u", "dcc.conditions"];
  return h("section", { class: "dcc-points", "data-certificate": c.id },
    h("h3", {}, t("dcc.results", { number: c.number })),
    h("table", { class: "grid points" },
      h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
      h("tbody", {}, c.points.map((p) => h("tr", {},
        h("td", {}, [dccText(p.result), dccText(p.quantity)].filter(Boolean).join(" — ")),
        h("td", { class: "num" }, `${p.value} ${p.unit}`),
        h("td", { class: "num" }, p.expanded_uncertainty ? `${p.expanded_uncertainty} ${p.unit} (k = ${p.coverage_factor}, p = ${p.coverage_probability})` : "—"),
        h("td", {}, (p.conditions || []).map(conditionText).join("; ")))))));
}

function showError(error) {
  notice(body(), t("common.error", { reason: error.message }), "error");
}

function channelTable(channels) {
  if (!channels.length) return h("p", { class: "notice", id: "no-channels" }, t("standard.no_channels"));
  const head = ["col.channel", "col.unit", "col.conversion"];
  return h("table", { class: "grid", id: "channels" },
    h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
    h("tbody", {}, channels.map((c) => h("tr", {},
      h("td", {}, h("a", { href: channelPage(c) }, `${c.site}:${c.agent}/${c.instrument}/${c.channel}`)),
      h("td", {}, c.unit),
      h("td", { class: "num" }, `${fmtNumber(c.scale)} · x + ${fmtNumber(c.offset)}`)))));
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

const FIT_COLORS = { certificates: ["#e9c46a", "rgba(233,196,106,0.18)"], channel: ["#6fa8dc", "rgba(111,168,220,0.22)"] };

function fitLabel(fit) {
  return fit.source === "certificates" ? t("chart.of_certificates") : fit.channel.split(":").pop();
}

function drawDrift() {
  const chart = page.chart;
  const traces = [];
  for (const fit of chart.fits) {
    const [line, fill] = FIT_COLORS[fit.source];
    const x = fit.curve.map((p) => plotTime(p.ts_ns));
    const label = fitLabel(fit);
    traces.push(
      { x, y: fit.curve.map((p) => p.low), mode: "lines", line: { width: 0, color: line }, hoverinfo: "skip", showlegend: false, name: `${t("chart.band")} low (${label})` },
      { x, y: fit.curve.map((p) => p.high), mode: "lines", line: { width: 0, color: line }, fill: "tonexty", fillcolor: fill, name: `${t("chart.band")} (${label})` },
      { x, y: fit.curve.map((p) => p.value), mode: "lines", line: { color: line, width: 2 }, name: `${t("chart.fit")} (${label})` },
    );
  }
  for (const channel of chart.monitored) {
    if (!channel.points.length) continue;
    traces.push({ x: channel.points.map((p) => plotTime(p.ts_ns)), y: channel.points.map((p) => p.value), mode: "markers",
      marker: { color: "#9aa5b8", size: 4 }, name: `${t("chart.monitored")} (${channel.instrument}/${channel.channel_name})` });
  }
  traces.push({
    x: chart.certificates.map((c) => plotTime(c.ts_ns)), y: chart.certificates.map((c) => c.value), mode: "markers",
    marker: { color: "#e9c46a", size: 9, symbol: "diamond" }, name: t("chart.certificates"),
    text: chart.certificates.map((c) => c.number), hoverinfo: "x+y+text",
    error_y: { type: "data", array: chart.certificates.map((c) => c.expanded_uncertainty), visible: true, color: "#e9c46a", thickness: 1.5, width: 6 },
  });
  const tolerance = chart.tolerance_limits;
  if (tolerance.length) {
    const tx = tolerance.map((p) => plotTime(p.ts_ns));
    traces.push({ x: tx, y: tolerance.map((p) => p.low), mode: "lines", line: { color: "#e76f51", dash: "dash" }, name: t("chart.tolerance_low") });
    traces.push({ x: tx, y: tolerance.map((p) => p.high), mode: "lines", line: { color: "#e76f51", dash: "dash" }, name: t("chart.tolerance_high") });
  }
  const marks = [];
  if (chart.calibration_due_ns) marks.push(verticalLine(chart.calibration_due_ns, t("chart.next_calibration"), "#a3be8c"));
  if (chart.predicted_out_of_tolerance_ns) {
    marks.push(verticalLine(chart.predicted_out_of_tolerance_ns, t("chart.leaves_tolerance"), "#e76f51", true));
  }
  const layout = chartLayout({
    margin: { l: 70, r: 20, t: 28, b: 40 }, // room for the date labels above the plot
    xaxis: dateAxis({ range: [plotTime(chart.start_ns), plotTime(chart.end_ns)] }),
    yaxis: { gridcolor: "#3b4252", zeroline: false, exponentformat: "none", automargin: true, title: { text: chart.unit } },
    shapes: marks.map((m) => m.shape), annotations: marks.map((m) => m.annotation),
  });
  window.Plotly.newPlot("drift-chart", traces, layout, chartConfig());
  document.getElementById("drift-chart").dataset.traces = String(traces.length);
}

function drawControl(control, element) {
  const points = control.points;
  const x = points.map((p) => plotTime(p.ts_ns));
  const flat = (value) => points.map(() => value);
  const rules = {};
  for (const v of control.violations) (rules[v.ts_ns] ||= []).push(session.lang === "vi" ? v.name_vi : v.name);
  const violating = points.filter((p) => p.ts_ns in rules);
  const traces = [
    { x, y: points.map((p) => p.value), mode: "lines+markers", marker: { size: 4 }, line: { color: "#6fa8dc", width: 1 }, name: t("chart.residual") },
    { x, y: flat(control.center), mode: "lines", line: { color: "#a3be8c" }, name: t("chart.center") },
    { x, y: flat(control.ucl), mode: "lines", line: { color: "#e76f51", dash: "dash" }, name: t("chart.ucl") },
    { x, y: flat(control.lcl), mode: "lines", line: { color: "#e76f51", dash: "dash" }, name: t("chart.lcl") },
    { x: violating.map((p) => plotTime(p.ts_ns)), y: violating.map((p) => p.value), mode: "markers",
      marker: { color: "#e76f51", size: 10, symbol: "circle-open", line: { width: 2 } },
      hovertext: violating.map((p) => rules[p.ts_ns].join("; ")), hoverinfo: "x+y+text",
      name: t("chart.violation") },
  ];
  window.Plotly.newPlot(element, traces, chartLayout({ xaxis: dateAxis() }), chartConfig());
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
  page.chart = await optional(`${path}/chart`);
  renderStandard();
}).catch((error) => notice(body(), t("common.error", { reason: error.message }), "error"));
