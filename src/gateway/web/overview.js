// Overview: agents, instruments by state, active alerts, each room's environment against its
// limits, and every channel with its live value.

import {
  ApiError, api, channelKey, channelPage, fmtAge, fmtClock, fmtNumber, fmtReading, fmtTime, h,
  liveFeed, notConfigured, notice, session, startPage, t,
} from "./app.js";

const model = {
  channels: [],
  agents: [],
  instruments: [],
  alerts: null, // null: the gateway has no alerts API
  hubSync: null, // null: no national hub configured
  updatedNs: null,
  connected: false,
};
const cells = new Map(); // channel key → elements showing its latest reading

async function refresh() {
  const [channels, agents, instruments] = await Promise.all([
    api("/api/v1/channels"),
    api("/api/v1/agents"),
    api("/api/v1/instruments"),
  ]);
  model.channels = channels;
  model.agents = agents;
  model.instruments = instruments;
  try {
    model.alerts = await api("/api/v1/alerts", { params: { state: "active" } });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    model.alerts = null;
  }
  try {
    model.hubSync = await api("/api/v1/hub/sync");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    model.hubSync = null;
  }
  model.updatedNs = Date.now() * 1e6;
  render();
}

// The push of the record ledger to the national hub: how far, how far behind, what it refused.
function renderHub() {
  const box = document.getElementById("hub-sync");
  const sync = model.hubSync;
  if (!sync) {
    box.replaceChildren(h("small", { class: "muted not-configured", "data-state": "not-configured" }, t("common.not_configured")));
    return;
  }
  const lines = [h("div", { id: "hub-state" }, t("overview.hub_state", {
    count: fmtNumber(sync.hub_count ?? 0),
    lag: sync.lag === null ? "—" : fmtNumber(sync.lag),
    refusals: fmtNumber(sync.refusals),
  }))];
  if (sync.waiting_for_checkpoint) lines.push(h("small", { class: "muted" }, t("overview.hub_waiting")));
  if (sync.error) lines.push(h("div", { class: "alarm", id: "hub-error" }, t("overview.hub_unreachable", { reason: sync.error })));
  if (sync.last_refusal) {
    const reason = sync.last_refusal.messages[session.lang] || sync.last_refusal.messages.en;
    lines.push(h("div", { class: "alarm", id: "hub-refusal" }, t("overview.hub_refused", { reason })));
  }
  box.replaceChildren(...lines);
}

function statusBadge(status) {
  return h("span", { class: `status status-${status}`, "data-status": status }, t(`status.${status}`));
}

function limitsText(limits) {
  if (!limits) return t("overview.no_limits");
  return t("overview.limits", {
    low: limits.low === null ? "−∞" : fmtNumber(limits.low),
    high: limits.high === null ? "+∞" : fmtNumber(limits.high),
  });
}

function remember(channel, parts) {
  const key = channelKey(channel);
  const list = cells.get(key) || [];
  list.push(parts);
  cells.set(key, list);
}

function renderTiles() {
  const online = model.agents.filter((a) => a.state === "online").length;
  document.getElementById("agents-online").textContent = fmtNumber(online);
  document.getElementById("agents-offline").textContent = fmtNumber(model.agents.length - online);
  const counts = {};
  for (const instrument of model.instruments) counts[instrument.state] = (counts[instrument.state] || 0) + 1;
  document.getElementById("instrument-states").replaceChildren(
    ...["connected", "unavailable", "unknown"].filter((s) => counts[s]).map((state) =>
      h("li", { class: `state-${state}` }, h("span", { class: "big" }, fmtNumber(counts[state])), " ", t(`instrument.${state}`))),
  );
  const alerts = document.getElementById("alerts-active");
  if (model.alerts === null) {
    alerts.replaceChildren(h("small", { class: "muted not-configured", "data-state": "not-configured" }, t("common.not_configured")));
  } else {
    alerts.replaceChildren(h("a", { href: "alerts.html", class: model.alerts.length ? "alarm" : "" }, fmtNumber(model.alerts.length)));
  }
  renderFeedState();
}

function renderFeedState() {
  const state = document.getElementById("feed-state");
  state.textContent = model.connected ? `● ${t("common.live")}` : t("common.disconnected");
  state.className = model.connected ? "feed-state on" : "feed-state off";
  document.getElementById("updated").textContent =
    model.updatedNs ? t("common.updated", { time: fmtClock(model.updatedNs) }) : "";
}

function renderRooms() {
  const rooms = new Map();
  for (const channel of model.channels) {
    if (!channel.room) continue;
    if (!rooms.has(channel.room)) rooms.set(channel.room, []);
    rooms.get(channel.room).push(channel);
  }
  const container = document.getElementById("rooms");
  if (!rooms.size) {
    notice(container, t("overview.no_rooms"));
    return;
  }
  container.replaceChildren(...[...rooms.entries()].sort().map(([room, channels]) =>
    h("article", { class: "room", "data-room": room },
      h("h3", {}, room),
      ...channels.map((channel) => {
        const value = h("span", { class: "value" }, fmtReading(channel.latest?.value, channel.latest?.u));
        const status = h("span", { class: "badge", "data-status": channel.status }, statusBadge(channel.status));
        const row = h("a", { class: `room-channel row-${channel.status}`, href: channelPage(channel), "data-key": channelKey(channel) },
          h("span", { class: "name" }, channel.channel),
          h("span", { class: "reading" }, value, " ", h("span", { class: "unit" }, channel.unit)),
          h("span", { class: "limits" }, limitsText(channel.limits)),
          status);
        remember(channel, { value, status, row });
        return row;
      }),
    )));
}

function renderChannels() {
  const rows = [];
  let agent = null;
  for (const channel of model.channels) {
    const source = `${channel.site}/${channel.agent}`;
    if (source !== agent) {
      agent = source;
      rows.push(h("tr", { class: "group" }, h("th", { colspan: 7 }, source)));
    }
    const value = h("td", { class: "num value" }, fmtReading(channel.latest?.value, channel.latest?.u));
    const quality = h("td", {}, channel.latest ? t(`quality.${channel.latest.quality}`) : "—");
    const age = h("td", { class: "num age" }, channel.latest ? fmtAge(channel.latest.ts_ns) : "—");
    const status = h("td", { class: "badge", "data-status": channel.status }, statusBadge(channel.status));
    const row = h("tr", { "data-key": channelKey(channel), class: `row-${channel.status}` },
      h("td", {}, channel.instrument),
      h("td", {}, h("a", { href: channelPage(channel) }, channel.channel)),
      value,
      h("td", {}, channel.unit),
      quality,
      age,
      status);
    remember(channel, { value, quality, age, status, row, ts: channel.latest?.ts_ns });
    rows.push(row);
  }
  const head = ["col.instrument", "col.channel", "col.value", "col.unit", "col.quality", "col.age", "col.status"];
  document.getElementById("channels").replaceChildren(
    h("table", { class: "grid", id: "channel-table" },
      h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
      h("tbody", {}, rows)));
}

function renderAgents() {
  const head = ["col.agent", "col.state", "col.version", "col.since", "col.last_seen"];
  document.getElementById("agents").replaceChildren(
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, head.map((key) => h("th", {}, t(key))))),
      h("tbody", {}, model.agents.map((agent) =>
        h("tr", { class: `agent-${agent.state}` },
          h("td", {}, `${agent.site}/${agent.agent}`),
          h("td", {}, h("span", { class: `status status-${agent.state === "online" ? "ok" : "offline"}` }, t(`agent.${agent.state}`))),
          h("td", {}, agent.version || "—"),
          h("td", {}, fmtTime(agent.since_ns)),
          h("td", {}, fmtTime(agent.last_seen_ns)))))));
}

function render() {
  cells.clear();
  renderTiles();
  renderHub();
  renderRooms();
  renderChannels();
  renderAgents();
}

// The part of a channel's status that its latest reading decides (the server decides the rest:
// offline, unavailable, stale).
function liveStatus(channel, reading) {
  if (!["ok", "out_of_limits", "uncertain", "bad", "no_data"].includes(channel.status)) return channel.status;
  if (reading.quality === "bad") return "bad";
  if (reading.quality === "uncertain") return "uncertain";
  const limits = channel.limits;
  if (limits && typeof reading.value === "number" &&
      ((limits.low !== null && reading.value < limits.low) || (limits.high !== null && reading.value > limits.high))) {
    return "out_of_limits";
  }
  return "ok";
}

function setStatus(parts, status) {
  if (parts.status.dataset.status === status) return;
  parts.status.replaceChildren(statusBadge(status));
  parts.status.dataset.status = status;
  parts.row.className = parts.row.className.replace(/\brow-\w+/, `row-${status}`);
}

function onReadings(readings) {
  for (const reading of readings) {
    const key = channelKey(reading);
    const channel = model.channels.find((c) => channelKey(c) === key);
    if (channel) {
      channel.latest = reading;
      channel.status = liveStatus(channel, reading);
    }
    for (const parts of cells.get(key) || []) {
      if (channel) setStatus(parts, channel.status);
      const text = fmtReading(reading.value, reading.u);
      if (parts.value.textContent !== text) {
        parts.value.textContent = text;
        parts.value.classList.remove("changed");
        void parts.value.offsetWidth; // restart the highlight
        parts.value.classList.add("changed");
      }
      if (parts.quality) parts.quality.textContent = t(`quality.${reading.quality}`);
      parts.ts = reading.ts_ns;
      if (parts.age) parts.age.textContent = fmtAge(reading.ts_ns);
    }
  }
}

function tickAges() {
  for (const list of cells.values()) {
    for (const parts of list) if (parts.age && parts.ts) parts.age.textContent = fmtAge(parts.ts);
  }
}

let pendingRefresh = null;
function refreshSoon() {
  clearTimeout(pendingRefresh);
  pendingRefresh = setTimeout(() => refresh().catch(showError), 300);
}

function showError(error) {
  notice(document.getElementById("channels"), t("common.error", { reason: error.message }), "error");
}

startPage("index.html", async () => {
  session.onLanguage.push(render);
  await refresh();
  liveFeed({}, {
    onReadings,
    onState: refreshSoon,
    onConnection: (up) => { model.connected = up; renderFeedState(); },
  });
  setInterval(tickAges, 1000);
  setInterval(() => refresh().catch(showError), 15000);
}).catch(showError);
