// A lean Pusher-protocol load generator: one Node process, driven by bench/ (Python).
//
//   node loadgen.mjs '<json config>'
//
// It writes JSON lines to stdout: {"type":"ready",...} once the sockets are set up, then waits for a
// "go" line on stdin (so the harness can sample server CPU and memory at the right moments), then
// {"type":"result",...}. Anything unexpected is a {"type":"error"} line and a non-zero exit.
//
// Hot paths avoid per-message work: a delivery is recognised and timed by scanning the raw frame
// bytes for the send time the publisher put in `data` ("T:<ms>"), with no string or JSON decoding.
import { createHash, createHmac } from "node:crypto";
import net from "node:net";
import { performance } from "node:perf_hooks";
import readline from "node:readline";
import WebSocket from "ws";
import { runCycles } from "./connectgen.mjs";
import { RawSubscriber, eachFrame, stampAt } from "./rawclient.mjs";

const config = JSON.parse(process.argv[2] ?? "{}");
const HOST = config.host ?? "127.0.0.1";
const PORT = config.port;
// Where triggers go; another node than the subscribers' in the cluster scenario (bench/cluster.py).
const PUBLISH_PORT = config.publishPort ?? PORT;
const APP_ID = String(config.appId);
const KEY = config.key;
const SECRET = config.secret;
const WS_PATH = `/app/${KEY}?protocol=7&client=js&version=8.4.0&flash=false`;
const WS_URL = `ws://${HOST}:${PORT}${WS_PATH}`;
const EVENTS_PATH = `/apps/${APP_ID}/events`;
const STAMP = Buffer.from("T:");
const PING = Buffer.from("pusher:ping");
const ERROR = Buffer.from("pusher:error");
const PONG = '{"event":"pusher:pong","data":{}}';

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function fail(message) {
  emit({ type: "error", message: String(message) });
  process.exit(1);
}

process.on("uncaughtException", (error) => fail(error.stack ?? error));
process.on("unhandledRejection", (error) => fail(error?.stack ?? error));

const stdinLines = readline.createInterface({ input: process.stdin });
const waiters = [];
stdinLines.on("line", (line) => {
  const waiter = waiters.shift();
  if (waiter) waiter(line.trim());
});
stdinLines.on("close", () => process.exit(0));
const nextCommand = () => new Promise((resolve) => waiters.push(resolve));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- latency histogram
// 10 µs buckets up to 1 s, then 1 ms buckets up to 120 s: fixed memory, no per-sample allocation.
const FINE = 100_000;
const COARSE = 119_000;
class Histogram {
  constructor() {
    this.counts = new Uint32Array(FINE + COARSE + 1);
    this.n = 0;
    this.sum = 0;
    this.max = 0;
  }
  add(ms) {
    if (ms < 0) ms = 0;
    const index = ms < 1000 ? Math.floor(ms * 100) : Math.min(FINE + Math.floor(ms) - 1000, FINE + COARSE);
    this.counts[index]++;
    this.n++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }
  percentile(p) {
    if (this.n === 0) return null;
    const rank = Math.ceil((p / 100) * this.n);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return i < FINE ? (i + 1) / 100 : i - FINE + 1001;
    }
    return this.max;
  }
  summary() {
    return {
      count: this.n,
      mean_ms: this.n ? this.sum / this.n : null,
      p50_ms: this.percentile(50),
      p95_ms: this.percentile(95),
      p99_ms: this.percentile(99),
      max_ms: this.n ? this.max : null,
    };
  }
}

// Parse the decimal number right after "T:" in a raw frame, straight from the bytes.
function stampOf(buf) {
  const at = buf.indexOf(STAMP);
  return at < 0 ? -1 : stampAt(buf, at + 2);
}

// ---------------------------------------------------------------- WebSocket clients
const counters = { errors: 0, unexpectedCloses: 0, pusherErrors: 0, subscribeErrors: 0, connectFailures: 0 };
const errorSamples = [];
function noteError(kind, detail) {
  counters.errors++;
  if (errorSamples.length < 10) errorSamples.push(`${kind}: ${detail}`);
}

/** Open one socket, wait for connection_established, subscribe to `channels`, wait for each success. */
function openSubscriber(channels, onDelivery, { deflate = false, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const ws = new WebSocket(WS_URL, { perMessageDeflate: deflate, skipUTF8Validation: true });
    const pending = new Set(channels);
    let established = -1;
    let settled = false;
    const timer = setTimeout(() => finish(new Error("timed out connecting/subscribing")), timeoutMs);
    function finish(error) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        ws.terminate();
        reject(error);
      } else {
        resolve({ ws, connectMs: established - started });
      }
    }
    ws.on("error", (error) => {
      if (!settled) finish(error);
      else noteError("socket", error.message);
    });
    ws.on("close", (code) => {
      if (!settled) finish(new Error(`closed ${code} while setting up`));
      else if (!ws.expectedClose) {
        counters.unexpectedCloses++;
        noteError("close", code);
      }
    });
    ws.on("message", (buf) => {
      if (settled && onDelivery !== null) {
        const t = stampOf(buf);
        if (t >= 0) {
          onDelivery(t, ws);
          return;
        }
      }
      if (buf.indexOf(PING) >= 0) {
        ws.send(PONG);
        return;
      }
      if (buf.indexOf(ERROR) >= 0) {
        counters.pusherErrors++;
        noteError("pusher:error", buf.toString());
        return;
      }
      if (settled) return;
      const message = JSON.parse(buf.toString());
      if (message.event === "pusher:connection_established") {
        established = performance.now();
        if (pending.size === 0) finish();
        for (const channel of channels) {
          ws.send(JSON.stringify({ event: "pusher:subscribe", data: { channel } }));
        }
      } else if (message.event === "pusher_internal:subscription_succeeded") {
        pending.delete(message.channel);
        if (pending.size === 0) finish();
      } else if (message.event === "pusher:subscription_error") {
        counters.subscribeErrors++;
        finish(new Error(`subscription error on ${message.channel}: ${JSON.stringify(message.data)}`));
      }
    });
  });
}

/** Open `count` subscribers with at most `concurrency` handshakes in flight. */
async function openMany(count, concurrency, channelsOf, onDelivery, options = {}) {
  const sockets = new Array(count);
  const connectTimes = new Histogram();
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      const { ws, connectMs } = await openSubscriber(channelsOf(i), onDelivery, options);
      sockets[i] = ws;
      connectTimes.add(connectMs);
    }
  }
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { sockets, seconds: (performance.now() - started) / 1000, connectTimes };
}

/** One bare-TCP subscriber (rawclient.mjs) on `channels`; stamped frames go to `onStamp(t, now)`. */
async function openRaw(channels, onStamp, timeoutMs = 30_000) {
  const subscriber = new RawSubscriber({ host: HOST, port: PORT, path: WS_PATH, onStamp, onProblem: noteProblem });
  const { connectMs } = await subscriber.open(channels, timeoutMs);
  return { subscriber, connectMs };
}

function noteProblem(kind, detail) {
  if (kind === "close") counters.unexpectedCloses++;
  else if (kind === "pusher:error") counters.pusherErrors++;
  noteError(kind, detail);
}

/** `count` bare-TCP subscribers with at most `concurrency` handshakes in flight. */
async function openRawMany(count, concurrency, channelsOf, onStamp) {
  const sockets = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      sockets[i] = (await openRaw(channelsOf(i), onStamp)).subscriber;
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return sockets;
}

/**
 * Take over a subscribed socket's reads: parse the server's (unmasked) frames straight from each TCP
 * chunk, one clock read per chunk, instead of one `message` event and Buffer per frame through `ws`.
 * `onStamp(sendTime, now)` is called for every frame carrying "T:"; pings get a pong.
 */
function takeOverReads(ws, onStamp) {
  const socket = ws._socket;
  socket.removeAllListeners("data");
  let pending = null;
  socket.on("data", (chunk) => {
    let buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    const now = performance.now();
    const at = eachFrame(buf, 0, (opcode, start, end) => {
      if (opcode === 1) {
        const found = buf.indexOf(STAMP, start);
        if (found >= 0 && found < end) onStamp(stampAt(buf, found + 2), now);
        else if (buf.indexOf(PING, start) >= 0 && buf.indexOf(PING, start) < end) ws.send(PONG);
        else if (buf.indexOf(ERROR, start) >= 0 && buf.indexOf(ERROR, start) < end) {
          counters.pusherErrors++;
          noteError("pusher:error", buf.toString("utf8", start, end));
        }
      } else if (opcode === 9) {
        ws.pong(buf.subarray(start, end));
      } // a close frame is followed by the TCP close, which `ws` still reports (counted there)
    });
    if (at < buf.length) pending = buf.subarray(at);
  });
}

function closeAll(sockets) {
  for (const ws of sockets) {
    if (!ws) continue;
    ws.expectedClose = true;
    if (ws instanceof RawSubscriber) ws.destroy();
    else ws.terminate();
  }
}

// ---------------------------------------------------------------- signed HTTP triggers
function md5(body) {
  return createHash("md5").update(body).digest("hex");
}

/** The full HTTP/1.1 request for one signed trigger (Pusher auth_version 1.0). */
function signedTrigger(body) {
  const query =
    `auth_key=${KEY}&auth_timestamp=${Math.floor(Date.now() / 1000)}` +
    `&auth_version=1.0&body_md5=${md5(body)}`;
  const signature = createHmac("sha256", SECRET).update(`POST\n${EVENTS_PATH}\n${query}`).digest("hex");
  return (
    `POST ${EVENTS_PATH}?${query}&auth_signature=${signature} HTTP/1.1\r\n` +
    `Host: ${HOST}:${PORT}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** An HTTP/1.1 connection with one request in flight; reconnects when the server does not keep
 * connections alive (Soketi answers every request with `Connection: close`). */
class HttpConnection {
  constructor() {
    this.socket = null;
    this.buffer = Buffer.alloc(0);
    this.resolve = null;
    this.reject = null;
    this.reconnects = 0;
  }
  connect() {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ host: HOST, port: PUBLISH_PORT, noDelay: true });
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve();
      });
      socket.once("error", reject);
      socket.on("data", (chunk) => this.onData(chunk));
      socket.on("error", (error) => this.fail(socket, error));
      socket.on("close", () => this.fail(socket, new Error("HTTP connection closed by the server")));
      this.socket = socket;
      this.buffer = Buffer.alloc(0);
    });
  }
  fail(socket, error) {
    if (socket !== this.socket) return;
    this.socket = null;
    const reject = this.reject;
    this.resolve = this.reject = null;
    reject?.(error);
  }
  async request(raw) {
    if (this.socket === null) {
      this.reconnects++;
      await this.connect();
    }
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      this.socket.write(raw);
    });
  }
  onData(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const head = this.buffer.indexOf("\r\n\r\n");
    if (head < 0) return;
    const headers = this.buffer.subarray(0, head).toString("latin1").toLowerCase();
    const match = /content-length:\s*(\d+)/.exec(headers);
    let end;
    if (match) {
      end = head + 4 + Number(match[1]);
      if (this.buffer.length < end) return;
    } else if (headers.includes("transfer-encoding: chunked")) {
      const last = this.buffer.indexOf("0\r\n\r\n", head + 4);
      if (last < 0) return;
      end = last + 5;
    } else {
      end = head + 4;
    }
    const status = Number(headers.slice(9, 12));
    const body = status >= 300 ? this.buffer.subarray(head + 4, end).toString() : "";
    this.buffer = this.buffer.subarray(end);
    if (headers.includes("connection: close")) {
      const socket = this.socket;
      this.socket = null;
      socket?.destroy();
    }
    const resolve = this.resolve;
    this.resolve = this.reject = null;
    resolve?.({ status, body });
  }
  close() {
    const socket = this.socket;
    this.socket = null;
    socket?.destroy();
  }
}

const http = { sent: 0, ok: 0, failed: 0, statusSamples: {} };
function noteStatus(status, body) {
  if (status >= 200 && status < 300) {
    http.ok++;
    return true;
  }
  http.failed++;
  http.statusSamples[status] = (http.statusSamples[status] ?? 0) + 1;
  noteError(`HTTP ${status}`, body.slice(0, 200));
  return false;
}

function eventBody(channel, stamp) {
  return `{"name":"bench","channel":"${channel}","data":"T:${stamp.toFixed(3)}"}`;
}

// ---------------------------------------------------------------- scenarios
async function fanout() {
  const subscribers = config.subscribers;
  const channel = "fanout";
  const latency = new Histogram();
  let deliveries = 0;
  let lastDelivery = 0;
  const onDelivery = (t) => {
    const now = performance.now();
    latency.add(now - t);
    deliveries++;
    lastDelivery = now;
  };
  // Compressed frames hide the stamp from `takeOverReads`: with `deflate`, `ws` reads (viaWs).
  const options = { deflate: Boolean(config.deflate) };
  const opened = await openMany(subscribers, config.concurrency ?? 100, () => [channel], onDelivery, options);
  const onStamp = (t, now) => {
    latency.add(now - t);
    deliveries++;
    lastDelivery = now;
  };
  if (!config.viaWs) for (const ws of opened.sockets) takeOverReads(ws, onStamp);
  const connections = [];
  for (let i = 0; i < config.publishers; i++) {
    const connection = new HttpConnection();
    await connection.connect();
    connections.push(connection);
  }
  emit({ type: "ready", sockets: subscribers, setup_seconds: opened.seconds });
  await nextCommand();

  // Publishers stop when the outstanding deliveries (accepted x subscribers - received) exceed
  // `maxLag` events' worth: the highest rate the server sustains, without an unbounded backlog.
  const maxOutstanding = config.maxLag > 0 ? config.maxLag * subscribers : Infinity;
  const started = performance.now();
  const stopAt = started + config.seconds * 1000;
  let accepted = 0;
  let stalls = 0;
  async function publisher(connection) {
    while (performance.now() < stopAt) {
      if (accepted * subscribers - deliveries >= maxOutstanding) {
        stalls++;
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      http.sent++;
      const { status, body } = await connection.request(signedTrigger(eventBody(channel, performance.now())));
      if (noteStatus(status, body)) accepted++;
    }
  }
  // Open loop (`rate` triggers/s): each trigger leaves at its scheduled time on an idle connection,
  // or a new one, never waiting for an answer; its stamp is the scheduled time, so a delivery delay
  // also counts any time the trigger spent waiting to leave (no coordinated omission).
  let extraConnections = 0;
  async function openLoop() {
    const interval = 1000 / config.rate;
    const idle = [...connections];
    const inFlight = new Set();
    let due = started;
    while (due < stopAt) {
      while (due <= performance.now() && due < stopAt) {
        let connection = idle.pop();
        if (connection === undefined) {
          connection = new HttpConnection();
          connections.push(connection);
          extraConnections++;
        }
        http.sent++;
        const sent = connection.request(signedTrigger(eventBody(channel, due))).then(({ status, body }) => {
          if (noteStatus(status, body)) accepted++;
          inFlight.delete(sent);
          idle.push(connection);
        });
        inFlight.add(sent);
        due += interval;
      }
      await sleep(Math.max(0, due - performance.now()));
    }
    await Promise.all(inFlight);
  }
  if (config.rate > 0) await openLoop();
  else await Promise.all(connections.map(publisher));
  const publishSeconds = (performance.now() - started) / 1000;
  const expected = accepted * subscribers;
  const drainDeadline = performance.now() + (config.drainSeconds ?? 10) * 1000;
  while (deliveries < expected && performance.now() < drainDeadline) await sleep(5);
  await sleep(100); // catch duplicates or stragglers
  const seconds = (Math.max(lastDelivery, started) - started) / 1000 || publishSeconds;
  emit({
    type: "result",
    subscribers,
    publishers: config.publishers,
    publish_seconds: publishSeconds,
    seconds,
    triggers_sent: http.sent,
    triggers_accepted: accepted,
    triggers_failed: http.failed,
    triggers_per_s: accepted / publishSeconds,
    offered_per_s: config.rate > 0 ? config.rate : null,
    extra_connections: extraConnections,
    deliveries,
    expected,
    lost: Math.max(0, expected - deliveries),
    duplicates: Math.max(0, deliveries - expected),
    deliveries_per_s: deliveries / seconds,
    latency: latency.summary(),
    publisher_stalls: stalls,
    http_reconnects: connections.reduce((sum, c) => sum + c.reconnects, 0),
    ...counters,
    error_samples: errorSamples,
  });
  for (const connection of connections) connection.close();
  closeAll(opened.sockets);
}

async function soak() {
  const channel = "benchmark";
  const latency = new Histogram();
  let steadyDeliveries = 0;
  let churnDeliveries = 0;
  const steadyOnStamp = (t, now) => {
    latency.add(now - t);
    steadyDeliveries++;
  };
  const churnOnStamp = (t, now) => {
    latency.add(now - t);
    churnDeliveries++;
  };
  // With `viaWs` every socket is a `ws` client, as before rawclient.mjs existed (for comparison).
  const viaWs = Boolean(config.viaWs);
  const steady = viaWs
    ? (await openMany(config.steady, 50, () => [channel], (t) => steadyOnStamp(t, performance.now()))).sockets
    : await openRawMany(config.steady, 50, () => [channel], steadyOnStamp);
  const publisher = new HttpConnection();
  await publisher.connect();
  emit({ type: "ready", sockets: config.steady });
  await nextCommand();

  const started = performance.now();
  const stopAt = started + config.seconds * 1000;
  let cycles = 0;
  const [minStay, maxStay] = config.stayMs;
  async function churner() {
    while (performance.now() < stopAt) {
      try {
        const socket = viaWs
          ? (await openSubscriber([channel], (t) => churnOnStamp(t, performance.now()), { timeoutMs: 10_000 })).ws
          : (await openRaw([channel], churnOnStamp, 10_000)).subscriber;
        cycles++;
        await sleep(minStay + Math.random() * (maxStay - minStay));
        socket.expectedClose = true;
        socket.close();
      } catch (error) {
        counters.connectFailures++;
        noteError("churn", error.message);
        await sleep(100);
      }
    }
  }
  let accepted = 0;
  async function publish() {
    let next = performance.now();
    while (performance.now() < stopAt) {
      http.sent++;
      const { status, body } = await publisher.request(signedTrigger(eventBody(channel, performance.now())));
      if (noteStatus(status, body)) accepted++;
      next += config.intervalMs;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
    }
  }
  await Promise.all([publish(), ...Array.from({ length: config.churning }, churner)]);
  const expectedSteady = accepted * config.steady;
  const drainDeadline = performance.now() + 5000;
  while (steadyDeliveries < expectedSteady && performance.now() < drainDeadline) await sleep(5);
  emit({
    type: "result",
    seconds: (performance.now() - started) / 1000,
    steady: config.steady,
    churning: config.churning,
    churn_cycles: cycles,
    triggers_sent: http.sent,
    triggers_accepted: accepted,
    triggers_failed: http.failed,
    deliveries: steadyDeliveries + churnDeliveries,
    steady_expected: expectedSteady,
    steady_lost: Math.max(0, expectedSteady - steadyDeliveries),
    http_reconnects: publisher.reconnects,
    delay: latency.summary(),
    ...counters,
    error_samples: errorSamples,
  });
  publisher.close();
  closeAll(steady);
}

async function memory() {
  const options = { deflate: Boolean(config.deflate) };
  const opened = await openMany(
    config.sockets,
    config.concurrency ?? 100,
    (i) => [`mem-${i}`, "mem-shared"],
    null,
    options,
  );
  emit({ type: "ready", sockets: config.sockets, setup_seconds: opened.seconds, ...counters });
  await nextCommand(); // the harness samples the server's RSS here
  emit({ type: "result", sockets: config.sockets, deflate: options.deflate, ...counters, error_samples: errorSamples });
  closeAll(opened.sockets);
}

/**
 * Footprint: open `sockets` bare-TCP subscribers (each on its own channel and a shared one), then on
 * "go" close them all with a close frame and report once the server has closed every one; the
 * harness samples the server's RSS before they open, once they are open, and after they closed.
 */
async function footprint() {
  const sockets = await openRawMany(config.sockets, config.concurrency ?? 100, (i) => [`fp-${i}`, "fp-shared"], null);
  emit({ type: "ready", sockets: config.sockets, ...counters });
  await nextCommand();
  for (const subscriber of sockets) subscriber.close();
  const deadline = performance.now() + 30_000;
  while (sockets.some((s) => !s.closed) && performance.now() < deadline) await sleep(20);
  for (const subscriber of sockets) subscriber.destroy();
  emit({
    type: "result",
    sockets: config.sockets,
    closed_by_server: sockets.filter((s) => s.closeCode === 1000).length,
    ...counters,
    error_samples: errorSamples,
  });
}

async function httpApi() {
  const channel = "http-bench";
  let deliveries = 0;
  const opened = await openMany(config.subscribers, 50, () => [channel], () => deliveries++);
  const connections = [];
  for (let i = 0; i < config.connections; i++) {
    const connection = new HttpConnection();
    await connection.connect();
    connections.push(connection);
  }
  // One body, signed once: a signature stays valid for 600 s, and the server verifies every request.
  const raw = signedTrigger(`{"name":"bench","channel":"${channel}","data":"T:0"}`);
  emit({ type: "ready", sockets: config.subscribers });
  await nextCommand();
  const latency = new Histogram();
  const started = performance.now();
  const stopAt = started + config.seconds * 1000;
  let accepted = 0;
  async function client(connection) {
    while (performance.now() < stopAt) {
      http.sent++;
      const sent = performance.now();
      const { status, body } = await connection.request(raw);
      latency.add(performance.now() - sent);
      if (noteStatus(status, body)) accepted++;
    }
  }
  await Promise.all(connections.map(client));
  const seconds = (performance.now() - started) / 1000;
  const expected = accepted * config.subscribers;
  const drainDeadline = performance.now() + 10_000;
  while (deliveries < expected && performance.now() < drainDeadline) await sleep(5);
  emit({
    type: "result",
    seconds,
    connections: config.connections,
    subscribers: config.subscribers,
    triggers_sent: http.sent,
    triggers_accepted: accepted,
    triggers_failed: http.failed,
    triggers_per_s: accepted / seconds,
    latency: latency.summary(),
    deliveries,
    expected,
    lost: Math.max(0, expected - deliveries),
    status_samples: http.statusSamples,
    http_reconnects: connections.reduce((sum, c) => sum + c.reconnects, 0),
    ...counters,
    error_samples: errorSamples,
  });
  for (const connection of connections) connection.close();
  closeAll(opened.sockets);
}

/**
 * New sockets: each cycle connects, reads connection_established, subscribes to a public channel,
 * reads the ack, closes and waits for the server's close; `concurrency` cycles in flight.
 * `generator: "raw"` (default) runs the cycles on bare TCP (connectgen.mjs); "ws" through `ws`, the
 * older and costlier client, kept to show what the generator's own cost did to the figure.
 */
async function connect() {
  emit({ type: "ready", sockets: 0 });
  await nextCommand();
  const channel = "connect-bench";
  let failures = 0;
  let cycles = 0;
  const times = new Histogram();
  const onCycle = (ms) => {
    times.add(ms);
    cycles++;
  };
  const onFailure = (message) => {
    failures++;
    noteError("connect", message);
  };
  const started = performance.now();
  if ((config.generator ?? "raw") === "raw") {
    const options = { host: HOST, port: PORT, path: WS_PATH, channel, total: config.connections };
    await runCycles({ ...options, concurrency: config.concurrency, timeoutMs: 10_000, onCycle, onFailure });
  } else {
    let next = 0;
    async function worker() {
      while (next < config.connections) {
        next++;
        const begun = performance.now();
        try {
          const { ws } = await openSubscriber([channel], null, { timeoutMs: 10_000 });
          onCycle(performance.now() - begun);
          ws.expectedClose = true;
          const closed = new Promise((resolve) => ws.once("close", resolve));
          ws.close(1000);
          await closed;
        } catch (error) {
          onFailure(error.message);
        }
      }
    }
    await Promise.all(Array.from({ length: config.concurrency }, worker));
  }
  const seconds = (performance.now() - started) / 1000;
  emit({
    type: "result",
    generator: config.generator ?? "raw",
    seconds,
    connections: cycles,
    failures,
    concurrency: config.concurrency,
    connections_per_s: cycles / seconds,
    connect_latency: times.summary(),
    ...counters,
    error_samples: errorSamples,
  });
}

/**
 * Slow consumer: `subscribers` bare-TCP subscribers and `slow` more that stop reading once
 * subscribed, all on one channel; events of `padding` bytes at `rate` per second for `seconds`.
 * The server must close each stalled socket (4100) once its backlog passes the cap, while the others
 * keep receiving. At the end the stalled sockets read again to find the close frame behind the
 * events they held.
 */
async function slowConsumer() {
  const channel = "slow-bench";
  const latency = new Histogram();
  let deliveries = 0;
  const onStamp = (t, now) => {
    latency.add(now - t);
    deliveries++;
  };
  const others = await openRawMany(config.subscribers, 50, () => [channel], onStamp);
  let slowDeliveries = 0;
  const stalled = [];
  for (let i = 0; i < config.slow; i++) {
    const { subscriber } = await openRaw([channel], () => slowDeliveries++);
    subscriber.pause();
    stalled.push(subscriber);
  }
  const publisher = new HttpConnection();
  await publisher.connect();
  emit({ type: "ready", sockets: config.subscribers + config.slow });
  await nextCommand();

  const padding = "x".repeat(config.padding);
  const started = performance.now();
  const stopAt = started + config.seconds * 1000;
  let accepted = 0;
  let next = started;
  while (performance.now() < stopAt) {
    http.sent++;
    const body = `{"name":"bench","channel":"${channel}","data":"T:${performance.now().toFixed(3)} ${padding}"}`;
    const { status, body: answer } = await publisher.request(signedTrigger(body));
    if (noteStatus(status, answer)) accepted++;
    next += 1000 / config.rate;
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
  }
  const expected = accepted * config.subscribers;
  const drainDeadline = performance.now() + 10_000;
  while (deliveries < expected && performance.now() < drainDeadline) await sleep(5);
  const seconds = (performance.now() - started) / 1000;

  for (const subscriber of stalled) {
    subscriber.expectedClose = true; // the close is what this scenario waits for, not an error
    subscriber.resume();
  }
  const closeDeadline = performance.now() + 10_000;
  while (stalled.some((s) => s.closeCode === null && !s.closed) && performance.now() < closeDeadline) await sleep(5);
  const closeCodes = stalled.map((s) => s.closeCode);
  emit({
    type: "result",
    seconds,
    subscribers: config.subscribers,
    slow: config.slow,
    event_bytes: config.padding,
    triggers_sent: http.sent,
    triggers_accepted: accepted,
    triggers_failed: http.failed,
    deliveries,
    expected,
    lost: expected - deliveries,
    latency: latency.summary(),
    slow_closed_4100: closeCodes.filter((code) => code === 4100).length,
    slow_close_codes: closeCodes,
    slow_deliveries: slowDeliveries,
    status_samples: http.statusSamples,
    ...counters,
    error_samples: errorSamples,
  });
  publisher.close();
  closeAll([...others, ...stalled]);
}

const scenarios = { fanout, soak, memory, footprint, http: httpApi, connect, slow: slowConsumer };
const run = scenarios[config.scenario];
if (!run) fail(`unknown scenario ${config.scenario}`);
await run();
// Give the terminations a moment to reach the server, then leave.
setTimeout(() => process.exit(0), 200);
