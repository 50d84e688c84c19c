// The dashboard page: the overview from ./api/overview kept live by ./api/stream (Server-Sent
// Events), the channels list, the debug console (its own stream) and the test event form.
// Everything the server sends is shown with textContent: nothing from it becomes markup.
import { COLORS, compact, drawChart } from "./charts.js";

const HISTORY = 900;
const CONSOLE_ROWS = 500;
const PAUSED_ENTRIES = 2000;
const CARDS = [
  ["connections", "Connections", ""],
  ["messages_in", "Messages in", "/s"],
  ["messages_out", "Messages out", "/s"],
  ["api_requests", "API requests", "/s"],
  ["api_error_rate", "API errors", " %"],
  ["bytes_out", "Bytes out", "/s"],
  ["channels", "Occupied channels", ""],
  ["presence_members", "Presence members", ""],
  ["slow_closed", "Slow consumers closed", "/s"],
  ["bus_lag", "Bus lag", " s"],
];
const NODE_COLUMNS = [
  "connections", "messages_in", "messages_out", "api_requests", "api_error_rate", "bytes_out",
  "channels", "presence_members", "slow_closed", "bus", "bus_lag",
];

const state = { fields: { app: [], node: [] }, apps: [], scope: "*", nodes: new Map(), cluster: {} };
const byId = (id) => document.getElementById(id);

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    window.location.assign("login");
    throw new Error("logged out");
  }
  return response;
}

function postJson(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

// --- figures --------------------------------------------------------------------------------

function selectedApps() {
  const chosen = byId("app-select").value;
  return chosen ? [chosen] : null;
}

/** An app-level figure summed over the chosen apps, or a node-level one. */
function figure(sample, field) {
  const nodeIndex = state.fields.node.indexOf(field);
  if (nodeIndex >= 0) return sample.node[nodeIndex] ?? 0;
  if (field === "api_error_rate") {
    const requests = figure(sample, "api_requests");
    return requests > 0 ? (100 * figure(sample, "api_errors")) / requests : 0;
  }
  const index = state.fields.app.indexOf(field);
  const only = selectedApps();
  let total = 0;
  for (const [appId, values] of Object.entries(sample.apps)) {
    if (only === null || only.includes(appId)) total += values[index] ?? 0;
  }
  return total;
}

function addSamples(view) {
  let node = state.nodes.get(view.id);
  if (node === undefined) {
    node = { id: view.id, name: view.name, own: view.own, bus: view.bus, samples: [] };
    state.nodes.set(view.id, node);
  }
  node.bus = view.bus;
  const last = node.samples.length ? node.samples[node.samples.length - 1].t : 0;
  for (const sample of view.samples) if (sample.t > last) node.samples.push(sample);
  if (node.samples.length > HISTORY) node.samples.splice(0, node.samples.length - HISTORY);
}

function nodeColor(index) {
  return COLORS[index % COLORS.length];
}

function renderCards() {
  const cards = byId("cards");
  if (!cards.childElementCount) {
    for (const [field, title] of CARDS) {
      const card = element("div", null, { class: "card", "data-card": field });
      card.append(element("h3", title), element("p", "0", { class: "value", id: `total-${field}` }));
      card.append(element("canvas", null, { class: "chart", "aria-label": `${title}, last 15 minutes` }));
      cards.append(card);
    }
  }
  const nodes = [...state.nodes.values()];
  const now = Math.max(Date.now() / 1000, ...nodes.map((n) => n.samples.at(-1)?.t ?? 0));
  for (const [field, , unit] of CARDS) {
    let total = 0;
    let requests = 0;
    let errors = 0;
    for (const node of nodes) {
      const latest = node.samples.at(-1);
      if (latest === undefined) continue;
      const value = figure(latest, field);
      total = field === "bus_lag" ? Math.max(total, value) : total + value;
      requests += figure(latest, "api_requests");
      errors += figure(latest, "api_errors");
    }
    if (field === "api_error_rate") total = requests > 0 ? (100 * errors) / requests : 0;
    byId(`total-${field}`).textContent = compact(total) + unit;
    const lines = nodes.map((node, index) => ({
      color: nodeColor(index),
      points: node.samples.map((sample) => [sample.t, figure(sample, field)]),
    }));
    drawChart(document.querySelector(`[data-card="${field}"] canvas`), lines, now);
  }
}

function cellText(node, latest, field) {
  if (field === "bus") {
    if (node.bus.driver === "memory") return "one node";
    return node.bus.connected ? "connected" : "DOWN";
  }
  const value = figure(latest, field);
  if (field === "api_error_rate") return `${value.toFixed(1)} %`;
  if (field === "bus_lag") return `${value.toFixed(3)} s`;
  return compact(value);
}

function renderNodes() {
  const rows = byId("node-rows");
  const seen = new Set();
  [...state.nodes.values()].forEach((node, index) => {
    seen.add(node.id);
    let row = rows.querySelector(`tr[data-node="${CSS.escape(node.id)}"]`);
    if (row === null) {
      row = element("tr", null, { "data-node": node.id });
      const name = element("td", null, { "data-field": "name" });
      name.append(element("span", null, { class: "swatch", "data-color": String(index % COLORS.length) }));
      name.append(element("span", node.name + (node.own ? " (this node)" : ""), { class: "node-name" }));
      row.append(name);
      for (const field of NODE_COLUMNS) row.append(element("td", "", { "data-field": field }));
      rows.append(row);
    }
    const latest = node.samples.at(-1);
    if (latest === undefined) return;
    for (const field of NODE_COLUMNS) {
      row.querySelector(`td[data-field="${field}"]`).textContent = cellText(node, latest, field);
    }
  });
  for (const row of [...rows.children]) if (!seen.has(row.dataset.node)) row.remove();
}

function renderOverview() {
  renderCards();
  renderNodes();
  const cluster = state.cluster;
  byId("cluster-state").textContent = !cluster.enabled
    ? "one node"
    : cluster.connected ? `${state.nodes.size} nodes` : "Redis unreachable: this node only";
}

function onTick(event) {
  const tick = JSON.parse(event.data);
  const live = new Set(tick.nodes.map((view) => view.id));
  for (const view of tick.nodes) addSamples(view);
  for (const id of [...state.nodes.keys()]) if (!live.has(id)) state.nodes.delete(id);
  if (!byId("tab-overview").hidden) renderOverview();
}

function openStream() {
  const stream = new EventSource("api/stream");
  stream.addEventListener("tick", onTick);
  stream.addEventListener("error", async () => {
    if (stream.readyState !== EventSource.CLOSED) return; // reconnecting by itself
    await api("api/overview"); // a 401 goes to the login page
    setTimeout(openStream, 2000);
  });
}

// --- channels -------------------------------------------------------------------------------

function currentApp() {
  return byId("app-select").value || state.apps[0]?.id || "";
}

async function loadChannels() {
  const query = new URLSearchParams({ app: currentApp(), prefix: byId("channel-prefix").value });
  const answer = await (await api(`api/channels?${query}`)).json();
  const rows = byId("channel-rows");
  rows.replaceChildren();
  for (const channel of answer.channels ?? []) {
    const row = element("tr", null, { "data-channel": channel.name });
    row.append(element("td", channel.name), element("td", channel.subscriptions));
    const actions = element("td");
    if (channel.presence) {
      const button = element("button", "Members", { type: "button", class: "quiet" });
      button.addEventListener("click", () => loadMembers(channel.name));
      actions.append(button);
    }
    row.append(actions);
    rows.append(row);
  }
  byId("channels-total").textContent = answer.error ?? `${answer.total} occupied`;
}

async function loadMembers(channel) {
  const query = new URLSearchParams({ app: currentApp(), channel });
  const answer = await (await api(`api/members?${query}`)).json();
  byId("members").hidden = false;
  byId("members-title").textContent = `${channel}: ${answer.total ?? 0} members`;
  const rows = byId("member-rows");
  rows.replaceChildren();
  for (const member of answer.members ?? []) {
    const row = element("tr", null, { "data-member": member.id });
    row.append(element("td", member.id), element("td", JSON.stringify(member.info)));
    rows.append(row);
  }
}

// --- debug console --------------------------------------------------------------------------

const consoleState = { stream: null, paused: false, pending: [] };

function clock(seconds) {
  const when = new Date(seconds * 1000);
  return when.toLocaleTimeString([], { hour12: false }) + `.${String(when.getMilliseconds()).padStart(3, "0")}`;
}

const KIND_LABELS = {
  opened: "Connection opened",
  closed: "Connection closed",
  subscribed: "Subscribed",
  unsubscribed: "Unsubscribed",
  api_event: "API event",
  client_event: "Client event",
  webhook: "Webhook sent",
};

function nodeLabel(id) {
  const node = state.nodes.get(id);
  return node ? node.name : id;
}

function consoleRow(entry) {
  const row = element("tr", null, { class: "console-row", "data-kind": entry.kind });
  row.append(
    element("td", clock(entry.time), { "data-field": "time" }),
    element("td", nodeLabel(entry.node), { "data-field": "node" }),
    element("td", KIND_LABELS[entry.kind] ?? entry.kind, { "data-field": "kind" }),
    element("td", entry.socket_id ?? "", { "data-field": "socket_id" }),
    element("td", entry.channel ?? "", { "data-field": "channel" }),
    element("td", entry.event ?? "", { "data-field": "event" }),
  );
  const details = element("td", null, { "data-field": "details" });
  if (entry.data !== undefined) {
    details.append(element("code", entry.data, { "data-field": "data" }));
    const note = `${entry.size} chars${entry.truncated ? ", truncated" : ""}`;
    details.append(element("span", note, { class: "hint", "data-field": "size" }));
  } else if (entry.kind === "closed") {
    details.append(element("span", entry.code === null ? "closed by the client" : `code ${entry.code}`,
      { "data-field": "code" }));
  } else if (entry.kind === "webhook") {
    details.append(element("span", entry.code === null ? "no answer" : `HTTP ${entry.code}`, { "data-field": "code" }));
  }
  row.append(details);
  return row;
}

function showEntries(entries) {
  const rows = byId("console-rows");
  for (const entry of entries) rows.prepend(consoleRow(entry));
  while (rows.childElementCount > CONSOLE_ROWS) rows.lastElementChild.remove();
}

function onConsole(event) {
  const batch = JSON.parse(event.data);
  if (consoleState.paused) {
    consoleState.pending.push(...batch.entries);
    if (consoleState.pending.length > PAUSED_ENTRIES) {
      consoleState.pending.splice(0, consoleState.pending.length - PAUSED_ENTRIES);
    }
  } else {
    showEntries(batch.entries);
  }
  const status = [`Watching app ${currentApp()}`];
  if (consoleState.paused) status.push(`paused, ${consoleState.pending.length} waiting`);
  if (batch.skipped) status.push(`${batch.skipped} left out by sampling`);
  if (batch.dropped) status.push(`${batch.dropped} dropped`);
  byId("console-status").textContent = status.join(" · ");
  byId("console-status").dataset.live = "true";
}

function stopConsole() {
  consoleState.stream?.close();
  consoleState.stream = null;
  byId("console-start").textContent = "Start";
  byId("console-pause").disabled = true;
  byId("console-status").textContent = "Stopped";
  delete byId("console-status").dataset.live;
}

function startConsole() {
  stopConsole();
  const query = new URLSearchParams({ ticks: "0", console: currentApp() });
  const channel = byId("console-channel").value.trim();
  if (channel) query.set("channel", channel);
  const stream = new EventSource(`api/stream?${query}`);
  stream.addEventListener("console", onConsole);
  consoleState.stream = stream;
  byId("console-start").textContent = "Stop";
  byId("console-pause").disabled = false;
  byId("console-status").textContent = `Watching app ${currentApp()}`;
}

function togglePause() {
  consoleState.paused = !consoleState.paused;
  byId("console-pause").textContent = consoleState.paused ? "Resume" : "Pause";
  if (!consoleState.paused) {
    showEntries(consoleState.pending);
    consoleState.pending = [];
  }
}

// --- send event -----------------------------------------------------------------------------

async function sendEvent(event) {
  event.preventDefault();
  const result = byId("send-result");
  result.textContent = "Sending…";
  const response = await postJson("api/events", {
    app: currentApp(),
    channel: byId("send-channel").value.trim(),
    event: byId("send-event").value.trim(),
    data: byId("send-data").value,
  });
  const text = await response.text();
  result.textContent = `${response.status} ${text}`;
  result.dataset.status = String(response.status);
}

// --- page -----------------------------------------------------------------------------------

function showTab(name) {
  for (const button of document.querySelectorAll(".tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const section of document.querySelectorAll("section.tab")) section.hidden = section.id !== `tab-${name}`;
  if (name === "overview") renderOverview();
  if (name === "channels") loadChannels();
}

async function start() {
  const overview = await (await api("api/overview")).json();
  state.fields = overview.fields;
  state.apps = overview.apps;
  state.scope = overview.scope;
  state.cluster = overview.cluster;
  for (const view of overview.nodes) addSamples(view);
  const select = byId("app-select");
  if (state.scope === "*") select.append(element("option", "All apps", { value: "" }));
  for (const app of state.apps) select.append(element("option", `${app.id} (${app.key})`, { value: app.id }));
  byId("scope").textContent = state.scope === "*" ? "every app" : `app ${state.scope} only`;
  select.addEventListener("change", () => {
    if (consoleState.stream !== null) startConsole();
    showTab(document.querySelector(".tabs button.active").dataset.tab);
  });
  for (const button of document.querySelectorAll(".tabs button")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  byId("channels-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadChannels();
  });
  byId("console-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (consoleState.stream === null) startConsole();
    else stopConsole();
  });
  byId("console-pause").addEventListener("click", togglePause);
  byId("console-clear").addEventListener("click", () => {
    byId("console-rows").replaceChildren();
    consoleState.pending = [];
  });
  byId("send-form").addEventListener("submit", sendEvent);
  byId("logout").addEventListener("click", async () => {
    await postJson("logout", {});
    window.location.assign("login");
  });
  window.addEventListener("resize", () => renderOverview());
  renderOverview();
  openStream();
  document.body.dataset.ready = "true";
}

start();
