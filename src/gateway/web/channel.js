// Channel page: the latest value, the limits, and a zoomable history that follows live values.

import {
  ApiError, api, chartConfig, chartLayout, dateAxis, download, fmtAge, fmtDuration, fmtNumber, fmtReading,
  fmtTime, fromPlotTime, h, liveFeed, notice, plotTime, session, startPage, t,
} from "./app.js";

const RANGES = [["15m", 900], ["1h", 3600], ["6h", 21600], ["24h", 86400], ["7d", 604800], ["30d", 2592000]];
const params = new URLSearchParams(location.search);
const key = ["site", "agent", "instrument", "channel"].map((name) => params.get(name) || "");
const path = `/api/v1/channels/${key.map(encodeURIComponent).join("/")}`;

const view = {
  channel: null,
  rangeS: 3600,
  startNs: null,
  endNs: null,
  follow: true,
  history: null,
  live: { x: [], y: [] },
  calibration: null,
  drawn: false,
  programmatic: false,
};
const chart = () => document.getElementById("chart");

function fact(label, value, id) {
  return h("div", { class: "fact" }, h("div", { class: "label" }, label), h("div", { class: "big", id }, value));
}

function renderFacts() {
  const c = view.channel;
  document.getElementById("channel-title").textContent = `${c.instrument} / ${c.channel}`;
  const limits = c.limits
    ? `${c.limits.low === null ? "−∞" : fmtNumber(c.limits.low)} … ${c.limits.high === null ? "+∞" : fmtNumber(c.limits.high)} ${c.unit}`
    : t("overview.no_limits");
  document.getElementById("facts").replaceChildren(
    fact(t("channel.latest"), c.latest ? `${fmtReading(c.latest.value, c.latest.u)} ${c.unit}` : "—", "latest-value"),
    fact(t("col.status"), h("span", { class: `status status-${c.status}`, id: "channel-status" }, t(`status.${c.status}`))),
    fact(t("channel.limits"), limits),
    certificateFact(),
    h("div", { class: "fact" }, h("div", { class: "label" }, t("col.time")),
      h("div", { class: "mid", id: "latest-time" }, c.latest ? fmtTime(c.latest.ts_ns) : "—")),
    h("div", { class: "fact" }, h("div", { class: "label" }, `${c.site}/${c.agent}`),
      h("div", {}, `${c.protocol} · ${fmtDuration(c.interval_s * 1e9)}`),
      h("div", { class: "muted" }, Object.entries(c.tags).map(([k, v]) => `${k}=${v}`).join(" "))),
  );
}

// The certificate correcting this channel now (from the instrument's calibration links).
function certificateFact() {
  const found = view.calibration;
  let text = t("channel.no_certificate");
  let expired = false;
  if (found) {
    const { certificate } = found;
    expired = certificate.due_ns !== null && certificate.due_ns <= Date.now() * 1e6;
    const values = { number: certificate.number, id: certificate.id, due: certificate.due_date };
    text = certificate.due_ns === null
      ? t("channel.certificate_no_due", values)
      : t(expired ? "channel.certificate_expired" : "channel.certificate_valid", values);
  }
  return h("div", { class: "fact" }, h("div", { class: "label" }, t("channel.certificate")),
    h("div", { class: expired ? "mid status status-bad" : "mid", id: "channel-certificate" }, text));
}

async function loadCalibration() {
  try {
    const instrument = await api(`/api/v1/instruments/${key.slice(0, 3).map(encodeURIComponent).join("/")}`);
    const link = instrument.links.find((x) => x.channel === key[3] && x.until_ns === null);
    const certificate = link && instrument.certificates.find((c) => c.id === link.certificate_id);
    view.calibration = certificate ? { link, certificate } : null;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    view.calibration = null;
  }
}

function renderToolbar() {
  const buttons = RANGES.map(([name, seconds]) =>
    h("button", {
      type: "button", "data-range": name, class: view.follow && view.rangeS === seconds ? "current" : null,
      onclick: () => { view.rangeS = seconds; view.follow = true; load().catch(showError); },
    }, t(`range.${name}`)));
  const follow = h("input", { type: "checkbox", id: "follow", checked: view.follow || null,
    onchange: (e) => { view.follow = e.target.checked; if (view.follow) load().catch(showError); } });
  document.getElementById("toolbar").replaceChildren(
    h("span", { class: "muted" }, t("channel.range")), ...buttons,
    h("label", {}, follow, " ", t("channel.follow")),
    h("span", { class: "spacer" }),
    h("button", { type: "button", id: "export-csv", onclick: () => exportHistory("csv") }, t("common.export_csv")),
    h("button", { type: "button", id: "export-json", onclick: () => exportHistory("json") }, t("common.export_json")),
  );
}

function isoOf(ns) {
  return new Date(ns / 1e6).toISOString();
}

async function exportHistory(format) {
  const name = `${key.join("-")}.${format}`;
  await download(`${path}/history`, { start: isoOf(view.startNs), end: isoOf(view.endNs), max_points: 20000, format }, name)
    .catch(showError);
}

async function load() {
  if (view.follow) {
    view.endNs = Date.now() * 1e6;
    view.startNs = view.endNs - view.rangeS * 1e9;
  }
  const width = chart().clientWidth || 1000;
  view.history = await api(`${path}/history`, {
    params: { start: isoOf(view.startNs), end: isoOf(view.endNs), max_points: Math.max(100, Math.min(2000, Math.round(width))) },
  });
  view.live = { x: [], y: [] };
  renderToolbar();
  draw();
}

function traces() {
  const points = view.history.points;
  const out = [];
  if (view.history.downsampled) {
    // A bucket is drawn at its middle, with its min–max band around its mean.
    const half = view.history.span_ns / 2;
    const x = points.map((p) => plotTime(p.ts_ns + half));
    if (points.some((p) => p.corrected !== null && p.corrected !== undefined)) {
      out.push({ x, y: points.map((p) => p.corrected), mode: "lines", line: { color: "#ebcb8b", width: 1.5 },
        name: t("chart.corrected") });
    }
    out.push({ x, y: points.map((p) => p.min), mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false, name: "min" });
    out.push({ x, y: points.map((p) => p.max), mode: "lines", line: { width: 0 }, fill: "tonexty",
      fillcolor: "rgba(111,168,220,0.25)", name: t("chart.range") });
    out.push({ x, y: points.map((p) => p.value), mode: "lines", line: { color: "#6fa8dc", width: 1.5 }, name: t("chart.mean") });
  } else {
    const good = points.filter((p) => p.quality !== 2 && p.value !== null);
    const corrected = good.filter((p) => p.corrected !== null && p.corrected !== undefined);
    out.push({ x: good.map((p) => plotTime(p.ts_ns)), y: good.map((p) => p.value), mode: "lines+markers",
      marker: { size: 3 }, line: { color: "#6fa8dc", width: 1.2 }, name: t(corrected.length ? "chart.raw" : "chart.value") });
    if (corrected.length) {
      // Corrected values with their expanded uncertainty (k = 2) as a band, beside the raw ones.
      const x = corrected.map((p) => plotTime(p.ts_ns));
      out.push({ x, y: corrected.map((p) => p.corrected - 2 * p.u_corrected), mode: "lines", line: { width: 0 },
        hoverinfo: "skip", showlegend: false, name: "U-" });
      out.push({ x, y: corrected.map((p) => p.corrected + 2 * p.u_corrected), mode: "lines", line: { width: 0 },
        fill: "tonexty", fillcolor: "rgba(235,203,139,0.30)", name: t("chart.u_band") });
      out.push({ x, y: corrected.map((p) => p.corrected), mode: "lines+markers", marker: { size: 3 },
        line: { color: "#ebcb8b", width: 1.5 }, name: t("chart.corrected"),
        text: corrected.map((p) => p.certificate || ""), hovertemplate: "%{y} (%{text})" });
    }
  }
  const bad = points.filter((p) => p.quality === 2 && p.value !== null);
  out.push({ x: bad.map((p) => plotTime(p.ts_ns)), y: bad.map((p) => p.value), mode: "markers",
    marker: { color: "#e76f51", size: 7, symbol: "x" }, name: t("chart.bad"), visible: bad.length ? true : "legendonly" });
  out.push({ x: view.live.x, y: view.live.y, mode: "lines+markers", marker: { size: 3, color: "#a3be8c" },
    line: { color: "#a3be8c", width: 1.2 }, name: t("chart.live") });
  return out;
}

function limitShapes() {
  const limits = view.channel.limits;
  if (!limits) return { shapes: [], annotations: [] };
  const shapes = [];
  const annotations = [];
  for (const [bound, label] of [["low", "chart.low"], ["high", "chart.high"]]) {
    if (limits[bound] === null) continue;
    shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: limits[bound], y1: limits[bound],
      line: { color: "#e76f51", width: 1.5, dash: "dash" } });
    annotations.push({ xref: "paper", x: 1, y: limits[bound], xanchor: "right", yanchor: bound === "low" ? "top" : "bottom",
      text: `${t(label)} ${fmtNumber(limits[bound])}`, showarrow: false, font: { color: "#e76f51", size: 11 } });
  }
  return { shapes, annotations };
}

function layout() {
  const { shapes, annotations } = limitShapes();
  return chartLayout({
    xaxis: dateAxis({ range: [plotTime(view.startNs), plotTime(view.endNs)] }),
    yaxis: { gridcolor: "#3b4252", zeroline: false, exponentformat: "none", automargin: true, title: { text: view.channel.unit } },
    shapes, annotations, uirevision: "keep",
  });
}

async function draw() {
  view.programmatic = true;
  try {
    await window.Plotly.react(chart(), traces(), layout(), chartConfig());
  } finally {
    view.programmatic = false;
  }
  if (!view.drawn) {
    view.drawn = true;
    chart().on("plotly_relayout", onZoom);
  }
  chart().dataset.points = String(view.history.points.length);
  const caption = view.history.downsampled
    ? t("channel.downsampled", { points: fmtNumber(view.history.points.length), span: fmtDuration(view.history.span_ns) })
    : t("channel.raw", { points: fmtNumber(view.history.points.length) });
  document.getElementById("caption").textContent = `${caption} · ${fmtTime(view.startNs)} – ${fmtTime(view.endNs)}`;
}

let zoomTimer = null;
function onZoom(change) {
  if (view.programmatic) return;
  if (change["xaxis.range[0]"] !== undefined) {
    view.startNs = fromPlotTime(change["xaxis.range[0]"]);
    view.endNs = fromPlotTime(change["xaxis.range[1]"]);
  } else if (change["xaxis.autorange"]) {
    view.follow = true;
  } else {
    return;
  }
  if (change["xaxis.range[0]"] !== undefined) view.follow = false;
  clearTimeout(zoomTimer);
  zoomTimer = setTimeout(() => load().catch(showError), 250);
}

function onReadings(readings) {
  for (const reading of readings) {
    if (reading.instrument !== key[2] || reading.channel !== key[3]) continue;
    view.channel.latest = reading;
    const latest = document.getElementById("latest-value");
    if (latest) latest.textContent = `${fmtReading(reading.value, reading.u)} ${view.channel.unit}`;
    const time = document.getElementById("latest-time");
    if (time) time.textContent = fmtTime(reading.ts_ns);
    if (!view.follow || !view.drawn || typeof reading.value !== "number") continue;
    view.live.x.push(plotTime(reading.ts_ns));
    view.live.y.push(reading.value);
    const liveIndex = chart().data.length - 1;
    window.Plotly.extendTraces(chart(), { x: [[plotTime(reading.ts_ns)]], y: [[reading.value]] }, [liveIndex], 20000);
    chart().dataset.live = String(view.live.x.length);
  }
}

async function slide() {
  if (!view.follow || !view.drawn) return;
  view.endNs = Date.now() * 1e6;
  view.startNs = view.endNs - view.rangeS * 1e9;
  view.programmatic = true;
  try {
    await window.Plotly.relayout(chart(), { "xaxis.range": [plotTime(view.startNs), plotTime(view.endNs)] });
  } finally {
    view.programmatic = false;
  }
}

function showError(error) {
  notice(document.getElementById("caption"), t("common.error", { reason: error.message }), "error");
}

startPage("", async () => {
  try {
    view.channel = await api(path);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 422)) {
      notice(document.querySelector("main"), t("channel.not_found"), "error");
      return;
    }
    throw error;
  }
  await loadCalibration();
  renderFacts();
  renderToolbar();
  await load();
  session.onLanguage.push(() => { renderFacts(); renderToolbar(); draw(); });
  liveFeed({ site: key[0], agent: key[1], instrument: key[2], channel: key[3] }, { onReadings });
  setInterval(() => slide().catch(showError), 5000);
}).catch(showError);
