// What every page of the dashboard shares: language, formatting, the API client, the live feed,
// the page frame (header, navigation, sign-in) and chart defaults.

import { PLOTLY_VI, TEXTS } from "./i18n.js";

const LANG_KEY = "etalon.lang";
const TOKEN_KEY = "etalon.token";

export const session = {
  lang: initialLanguage(),
  me: null,
  onLanguage: [],
};

function initialLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");  // a link that says ?lang=vi
  if (asked === "en" || asked === "vi") return asked;
  const stored = localStorage.getItem(LANG_KEY);
  if (stored === "en" || stored === "vi") return stored;
  return (navigator.language || "en").toLowerCase().startsWith("vi") ? "vi" : "en";
}

// -- language and formats ------------------------------------------------------------------------

export function locale() {
  return session.lang === "vi" ? "vi-VN" : "en-GB";
}

export function t(key, values = {}) {
  const text = TEXTS[session.lang][key] ?? TEXTS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

export function fmtNumber(value, digits = 10) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return new Intl.NumberFormat(locale(), { maximumSignificantDigits: digits }).format(value);
}

export function fmtValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return fmtNumber(value);
  if (typeof value === "boolean") return value ? "1" : "0";
  return String(value);
}

const dateTimeFormats = {};
function dateTimeFormat(kind) {
  const key = `${session.lang}:${kind}`;
  if (!dateTimeFormats[key]) {
    const options = {
      datetime: { dateStyle: "short", timeStyle: "medium" },
      date: { dateStyle: "medium" },
      time: { timeStyle: "medium" },
    }[kind];
    dateTimeFormats[key] = new Intl.DateTimeFormat(locale(), options);
  }
  return dateTimeFormats[key];
}

export function fmtTime(ns) {
  if (ns === null || ns === undefined) return "—";
  return dateTimeFormat("datetime").format(new Date(ns / 1e6));
}

export function fmtDate(ns) {
  if (ns === null || ns === undefined) return "—";
  return dateTimeFormat("date").format(new Date(ns / 1e6));
}

export function fmtClock(ns) {
  return dateTimeFormat("time").format(new Date(ns / 1e6));
}

export function fmtDuration(ns) {
  const seconds = Math.max(0, ns / 1e9);
  const [amount, unit] =
    seconds < 90 ? [seconds, "second"]
    : seconds < 5400 ? [seconds / 60, "minute"]
    : seconds < 129600 ? [seconds / 3600, "hour"]
    : [seconds / 86400, "day"];
  return new Intl.NumberFormat(locale(), {
    style: "unit", unit, unitDisplay: "short", maximumFractionDigits: amount < 10 ? 1 : 0,
  }).format(amount);
}

export function fmtAge(ns) {
  if (ns === null || ns === undefined) return "—";
  return fmtDuration(Date.now() * 1e6 - ns);
}

// -- the API -------------------------------------------------------------------------------------

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
    this.reason = reason;
  }
}

function reasonOf(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  return `HTTP ${status}`;
}

export function url(path, params = {}) {
  const target = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) target.searchParams.append(name, one);
  }
  return target;
}

export async function api(path, { method = "GET", params = {}, body } = {}) {
  // The API's refusals come back in the page's language (the switch, not the browser's).
  const headers = { Accept: "application/json", "Accept-Language": session.lang };
  const secret = token();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url(path, params), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) data = await response.json();
  if (!response.ok) {
    if (response.status === 401) showSignIn(t("auth.refused"));
    throw new ApiError(response.status, reasonOf(data, response.status));
  }
  return data;
}

// Download an export (the token goes in a header, not in a link anyone could copy).
export async function download(path, params, filename) {
  const headers = {};
  const secret = token();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  const response = await fetch(url(path, params), { headers });
  if (!response.ok) throw new ApiError(response.status, `HTTP ${response.status}`);
  const blob = await response.blob();
  const link = h("a", { href: URL.createObjectURL(blob), download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// Live readings and state changes (server-sent events; the browser reconnects by itself).
export function liveFeed(params, { onReadings, onState, onConnection }) {
  const secret = token();
  const source = new EventSource(url("/api/v1/live", { ...params, access_token: secret || undefined }));
  source.addEventListener("readings", (e) => onReadings && onReadings(JSON.parse(e.data)));
  for (const kind of ["agent", "instrument"]) {
    source.addEventListener(kind, (e) => onState && onState(JSON.parse(e.data)));
  }
  source.onopen = () => onConnection && onConnection(true);
  source.onerror = () => onConnection && onConnection(false);
  window.addEventListener("beforeunload", () => source.close());
  return source;
}

export function channelKey(c) {
  return `${c.site}/${c.agent}/${c.instrument}/${c.channel}`;
}

export function channelPage(c) {
  const params = new URLSearchParams({ site: c.site, agent: c.agent, instrument: c.instrument, channel: c.channel });
  return `channel.html?${params}`;
}

// -- DOM -----------------------------------------------------------------------------------------

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function translateStatic(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of root.querySelectorAll("[data-i18n-placeholder]")) {
    element.placeholder = t(element.dataset.i18nPlaceholder);
  }
  document.documentElement.lang = session.lang;
}

export function notice(container, text, kind = "info") {
  container.replaceChildren(h("p", { class: `notice ${kind}` }, text));
}

// A feature the gateway does not serve (its API answers 404): say so, in the current language.
export function notConfigured(container, whatKey) {
  const draw = () => container.replaceChildren(
    h("div", { class: "notice not-configured", "data-state": "not-configured" },
      h("strong", {}, t("common.not_configured")), " ", t("common.not_configured_detail", { what: t(whatKey) })),
  );
  draw();
  session.onLanguage.push(draw);
}

// -- the page frame ------------------------------------------------------------------------------

const PAGES = [
  ["index.html", "nav.overview"],
  ["alerts.html", "nav.alerts"],
  ["standard.html", "nav.standards"],
  ["calibrations.html", "nav.calibrations"],
  ["audit.html", "nav.audit"],
];

function header(current) {
  const role = session.me ? t(`role.${session.me.role}`) : "";
  const who = session.me ? `${session.me.name} (${role})` : "";
  return h("header", { class: "top" },
    h("a", { class: "brand", href: "index.html" }, "etalon",
      session.me ? h("span", { class: "site" }, ` · ${session.me.site}`) : null),
    h("nav", {},
      PAGES.map(([href, key]) => h("a", { href, class: href === current ? "current" : null, "data-i18n": key }, t(key)))),
    h("span", { class: "spacer" }),
    h("span", { class: "who", id: "who" }, who),
    h("button", { type: "button", id: "lang-switch", class: "lang", onclick: switchLanguage, "data-i18n": "lang.switch" }, t("lang.switch")),
    token() ? h("button", { type: "button", class: "signout", onclick: signOut, "data-i18n": "auth.signout" }, t("auth.signout")) : null,
  );
}

function switchLanguage() {
  session.lang = session.lang === "vi" ? "en" : "vi";
  localStorage.setItem(LANG_KEY, session.lang);
  translateStatic();
  const who = document.getElementById("who");
  if (who && session.me) who.textContent = `${session.me.name} (${t(`role.${session.me.role}`)})`;
  for (const listener of session.onLanguage) listener();
}

function signOut() {
  localStorage.removeItem(TOKEN_KEY);
  location.reload();
}

let signInShown = false;
export function showSignIn(message) {
  if (signInShown) return;
  signInShown = true;
  const input = h("input", { type: "password", id: "token-input", autocomplete: "off", required: true });
  const form = h("form", { class: "signin", id: "signin" },
    h("h2", { "data-i18n": "auth.title" }, t("auth.title")),
    h("p", {}, t("auth.prompt")),
    message ? h("p", { class: "notice error" }, message) : null,
    h("label", {}, t("auth.token"), " ", input),
    h("button", { type: "submit" }, t("auth.submit")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, input.value.trim());
    location.reload();
  });
  document.body.append(h("div", { class: "overlay" }, form));
  input.focus();
}

// Start a page: take a token from ?token= (then drop it from the address bar), draw the frame,
// find out who we are, then let the page draw itself.
export async function startPage(current, draw) {
  const here = new URL(location.href);
  const given = here.searchParams.get("token");
  if (given) {
    localStorage.setItem(TOKEN_KEY, given);
    here.searchParams.delete("token");
    history.replaceState(null, "", here);
  }
  try {
    session.me = await api("/api/v1/me");
  } catch (error) {
    document.body.prepend(header(current));
    translateStatic();
    if (!(error instanceof ApiError && error.status === 401)) {
      notice(document.querySelector("main") || document.body, t("common.error", { reason: error.message }), "error");
    }
    return;
  }
  document.body.prepend(header(current));
  translateStatic();
  await draw();
}

// -- charts --------------------------------------------------------------------------------------

let plotlyLocaleRegistered = false;

export function chartConfig() {
  if (!plotlyLocaleRegistered) {
    window.Plotly.register(PLOTLY_VI);
    plotlyLocaleRegistered = true;
  }
  return { locale: session.lang, displaylogo: false, responsive: true };
}

export function chartLayout(extra = {}) {
  return {
    separators: session.lang === "vi" ? ",." : ".,",
    margin: { l: 70, r: 20, t: 10, b: 40 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "system-ui, sans-serif", size: 12, color: "#d8dee9" },
    xaxis: dateAxis(),
    yaxis: { gridcolor: "#3b4252", zeroline: false, exponentformat: "none", automargin: true },
    legend: { orientation: "h", y: -0.15 },
    hovermode: "closest",
    ...extra,
  };
}

// Date ticks in the language's order (plotly's own defaults are US English).
export function dateAxis(extra = {}) {
  const vi = session.lang === "vi";
  return {
    type: "date", gridcolor: "#3b4252", zeroline: false, automargin: true,
    tickformatstops: [
      { dtickrange: [null, 1000], value: "%H:%M:%S.%L" },
      { dtickrange: [1000, 60000], value: "%H:%M:%S" },
      { dtickrange: [60000, 86400000], value: vi ? "%H:%M<br>%d/%m/%Y" : "%H:%M<br>%d %b %Y" },
      { dtickrange: [86400000, "M1"], value: vi ? "%d/%m/%Y" : "%d %b %Y" },
      { dtickrange: ["M1", "M12"], value: vi ? "%m/%Y" : "%b %Y" },
      { dtickrange: ["M12", null], value: "%Y" },
    ],
    hoverformat: vi ? "%H:%M:%S %d/%m/%Y" : "%d %b %Y %H:%M:%S",
    ...extra,
  };
}

// Plotly dates: local wall-clock text, so the axis shows the lab's time.
export function plotTime(ns) {
  const d = new Date(ns / 1e6);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fromPlotTime(text) {
  // "YYYY-MM-DD HH:MM:SS.mmm" in local time → ns
  const [date, time = "00:00:00"] = String(text).split(" ");
  const [y, mo, d] = date.split("-").map(Number);
  const [hh, mm, ss = "0"] = time.split(":");
  const seconds = Number(ss);
  const whole = Math.floor(seconds);
  const ms = Math.round((seconds - whole) * 1000);
  return new Date(y, mo - 1, d, Number(hh), Number(mm), whole, ms).getTime() * 1e6;
}

// A reading shown to the digits its uncertainty supports (two significant digits of u), or to
// seven significant digits when it has none.
export function fmtReading(value, u) {
  if (typeof value !== "number") return fmtValue(value);
  if (typeof u === "number" && u > 0) {
    const digits = Math.min(12, Math.max(0, 1 - Math.floor(Math.log10(u))));
    return new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
  }
  return fmtNumber(value, 7);
}
