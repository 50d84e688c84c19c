// Drives real Pusher clients (pusher-js, laravel-echo, the `pusher` Node SDK) for Revurb's tests.
//
// Reads one JSON command per line on stdin and writes one JSON report per line on stdout:
//   {"type":"reply","id":..,"ok":true,...} answers a command; everything else is something a client saw
//   (state changes, events, errors, members, close codes, raw frames). See README.md for the commands.
// Signatures are computed here with node:crypto, independently of the server under test.

import { AsyncLocalStorage } from "node:async_hooks";
import { createHash, createHmac } from "node:crypto";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const Pusher = require("pusher-js");
const PusherServer = require("pusher");
const Echo = (await import("laravel-echo")).default;

const WRONG_SECRET = "definitely-not-the-app-secret";

// --- output ------------------------------------------------------------------------------------

/** Turns anything a client hands us into plain JSON (Errors, class instances, cycles). */
function plain(value) {
  const seen = new WeakSet();
  const walk = (v, depth) => {
    if (v === undefined) return null;
    if (v === null || typeof v !== "object") {
      if (typeof v === "function" || typeof v === "symbol") return String(v);
      if (typeof v === "bigint") return v.toString();
      return v;
    }
    if (seen.has(v)) return "[circular]";
    if (depth > 8) return "[deep]";
    seen.add(v);
    let out;
    if (v instanceof Error) {
      out = { name: v.name, message: v.message };
      for (const k of Object.keys(v)) out[k] = walk(v[k], depth + 1);
    } else if (Array.isArray(v)) {
      out = v.map((x) => walk(x, depth + 1));
    } else if (v instanceof Uint8Array) {
      out = Buffer.from(v).toString("base64");
    } else {
      out = {};
      for (const k of Object.keys(v)) {
        if (typeof v[k] === "function") continue;
        out[k] = walk(v[k], depth + 1);
      }
    }
    seen.delete(v);
    return out;
  };
  return walk(value, 0);
}

function emit(message) {
  process.stdout.write(JSON.stringify(plain(message)) + "\n");
}

function reply(id, ok, fields = {}) {
  emit({ type: "reply", id, ok, ...fields });
}

// --- signing (independent of the server) ----------------------------------------------------------

const hmacHex = (secret, text) => createHmac("sha256", secret).update(text).digest("hex");

function sharedSecret(channel, masterKeyBase64) {
  const master = Buffer.from(masterKeyBase64, "base64");
  return createHash("sha256")
    .update(Buffer.concat([Buffer.from(channel), master]))
    .digest("base64");
}

/** Builds the channelAuthorization/userAuthentication handlers for one client's settings. */
function authHandlers(state) {
  const secret = () => (state.badAuth ? WRONG_SECRET : state.secret);
  const channelAuthorization = {
    customHandler: ({ socketId, channelName }, callback) => {
      try {
        const auth = {};
        if (channelName.startsWith("presence-")) {
          const presence = state.channelPresence.get(channelName) ?? state.presence;
          if (!presence) throw new Error(`no presence data given for ${channelName}`);
          auth.channel_data = JSON.stringify(presence);
          auth.auth = `${state.key}:${hmacHex(secret(), `${socketId}:${channelName}:${auth.channel_data}`)}`;
        } else {
          auth.auth = `${state.key}:${hmacHex(secret(), `${socketId}:${channelName}`)}`;
        }
        if (channelName.startsWith("private-encrypted-")) {
          if (!state.masterKey) throw new Error(`no masterKey given for ${channelName}`);
          auth.shared_secret = sharedSecret(channelName, state.masterKey);
        }
        emit({ type: "auth", client: state.name, channel: channelName, socket_id: socketId });
        callback(null, auth);
      } catch (error) {
        callback(error, null);
      }
    },
  };
  const userAuthentication = {
    customHandler: ({ socketId }, callback) => {
      try {
        if (!state.user) throw new Error("no user data given for sign-in");
        const userData = JSON.stringify(state.user);
        callback(null, {
          auth: `${state.key}:${hmacHex(secret(), `${socketId}::user::${userData}`)}`,
          user_data: userData,
        });
      } catch (error) {
        callback(error, null);
      }
    },
  };
  return { channelAuthorization, userAuthentication };
}

// --- raw close codes ---------------------------------------------------------------------------
// pusher-js only surfaces close codes >= 4000 through its errors; wrap the socket factory so every
// socket reports its close frame, attributed to the client whose async context created it.

const currentClient = new AsyncLocalStorage();
const createWebSocket = Pusher.Runtime.createWebSocket;
Pusher.Runtime.createWebSocket = function (url) {
  const socket = createWebSocket.call(this, url);
  const client = currentClient.getStore() ?? null;
  socket.addEventListener("close", (event) => {
    emit({ type: "closed", client, code: event.code, reason: event.reason ?? "", wasClean: event.wasClean ?? null });
  });
  return socket;
};

if (process.env.REVURB_DRIVER_DEBUG) {
  Pusher.log = (message) => process.stderr.write(`[pusher-js] ${message}\n`);
}

// --- clients -----------------------------------------------------------------------------------

/** name -> { name, pusher, echo?, key, secret, masterKey, presence, user, badAuth, channelPresence, channels } */
const clients = new Map();

function clientState(cmd) {
  return {
    name: cmd.client,
    key: cmd.key,
    secret: cmd.secret,
    masterKey: cmd.masterKey ?? null,
    presence: cmd.presence ?? null,
    user: cmd.user ?? null,
    badAuth: Boolean(cmd.badAuth),
    channelPresence: new Map(),
    channels: new Set(),
  };
}

function pusherOptions(cmd, state) {
  if (cmd.tls) process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
  return {
    wsHost: cmd.host ?? "127.0.0.1",
    wsPort: cmd.port,
    wssPort: cmd.port,
    wsPath: cmd.path ?? "",
    forceTLS: Boolean(cmd.tls),
    enabledTransports: ["ws", "wss"],
    cluster: "mt1",
    disableStats: true,
    ...authHandlers(state),
    ...(cmd.options ?? {}),
  };
}

/** Hooks every reporting listener onto a pusher-js client. */
function instrument(pusher, state) {
  const client = state.name;
  pusher.connection.bind("state_change", ({ previous, current }) => {
    emit({ type: "state", client, previous, current, socket_id: pusher.connection.socket_id ?? null });
  });
  pusher.connection.bind("error", (error) => emit({ type: "error", client, error }));
  pusher.connection.bind("message", (message) => emit({ type: "message", client, message }));
  pusher.bind_global((event, data) => emit({ type: "event", client, channel: null, source: "global", event, data }));
  pusher.user.bind_global((event, data) => emit({ type: "user_event", client, event, data }));
  return pusher;
}

function newPusher(cmd, state) {
  return currentClient.run(state.name, () => instrument(new Pusher(state.key, pusherOptions(cmd, state)), state));
}

function waitConnected(pusher, ms) {
  return new Promise((resolve, reject) => {
    if (pusher.connection.state === "connected") return resolve(pusher.connection.socket_id);
    const timer = setTimeout(() => {
      pusher.connection.unbind("connected", onConnected);
      reject(new Error(`not connected after ${ms} ms (state ${pusher.connection.state})`));
    }, ms);
    const onConnected = () => {
      clearTimeout(timer);
      pusher.connection.unbind("connected", onConnected);
      resolve(pusher.connection.socket_id);
    };
    pusher.connection.bind("connected", onConnected);
  });
}

/** Reports a channel's events once, however many times it is subscribed. */
function watchChannel(state, channel) {
  if (channel.__revurbWatched) return channel;
  channel.__revurbWatched = true;
  const client = state.name;
  let lastUserId = null;
  const handleEvent = channel.handleEvent;
  channel.handleEvent = function (event) {
    lastUserId = event.user_id ?? null;
    try {
      return handleEvent.call(this, event);
    } finally {
      lastUserId = null;
    }
  };
  channel.bind_global((event, data) => {
    const report = { type: "event", client, channel: channel.name, source: "channel", event, data };
    if (lastUserId !== null) report.user_id = lastUserId;
    if (event === "pusher:subscription_succeeded" && channel.members) {
      report.data = membersOf(channel);
      emit(report);
      emit({ type: "members", client, channel: channel.name, ...membersOf(channel) });
      return;
    }
    emit(report);
  });
  return channel;
}

function membersOf(channel) {
  const m = channel.members;
  return { count: m.count, me: m.me ?? null, members: { ...(m.members ?? {}) } };
}

function waitSubscription(channel, ms) {
  return new Promise((resolve) => {
    if (channel.subscribed) return resolve({ subscribed: true });
    const done = (result) => {
      clearTimeout(timer);
      channel.unbind("pusher:subscription_succeeded", onOk);
      channel.unbind("pusher:subscription_error", onError);
      resolve(result);
    };
    const onOk = () => done({ subscribed: true });
    const onError = (error) => done({ subscribed: false, error });
    const timer = setTimeout(() => done({ subscribed: false, error: `no subscription result after ${ms} ms` }), ms);
    channel.bind("pusher:subscription_succeeded", onOk);
    channel.bind("pusher:subscription_error", onError);
  });
}

function getClient(cmd) {
  const state = clients.get(cmd.client);
  if (!state) throw new Error(`unknown client ${JSON.stringify(cmd.client)}`);
  return state;
}

function pusherChannel(state, name) {
  const channel = state.pusher.channel(name);
  if (!channel) throw new Error(`client ${state.name} has no channel ${name}`);
  return channel;
}

// --- laravel-echo ------------------------------------------------------------------------------

const ECHO_KINDS = {
  public: (echo, name) => echo.channel(name),
  private: (echo, name) => echo.private(name),
  encrypted: (echo, name) => echo.encryptedPrivate(name),
  presence: (echo, name) => echo.join(name),
};

/** Returns an Echo channel, reporting its subscribed/error callbacks once. */
function echoChannel(state, cmd, kind) {
  const open = ECHO_KINDS[kind];
  if (!open) throw new Error(`unknown echo channel kind ${JSON.stringify(kind)}`);
  const channel = open(state.echo, cmd.channel);
  if (!channel.__revurbWatched) {
    channel.__revurbWatched = true;
    const base = { type: "echo", client: state.name, channel: cmd.channel, pusher_channel: channel.name };
    channel.subscribed(() => emit({ ...base, kind: "subscribed" }));
    channel.error((error) => emit({ ...base, kind: "error", payload: error }));
    watchChannel(state, channel.subscription);
  }
  return channel;
}

function echoReport(state, cmd, channel, kind, extra = {}) {
  return (payload) =>
    emit({ type: "echo", client: state.name, kind, channel: cmd.channel, pusher_channel: channel.name, ...extra, payload });
}

// --- commands ----------------------------------------------------------------------------------

const commands = {
  async connect(cmd) {
    if (clients.has(cmd.client)) throw new Error(`client ${cmd.client} already exists`);
    const state = clientState(cmd);
    clients.set(cmd.client, state);
    state.pusher = newPusher(cmd, state);
    if (cmd.wait) return { socket_id: await waitConnected(state.pusher, cmd.waitMs ?? 4000) };
    return {};
  },

  async echo(cmd) {
    if (clients.has(cmd.client)) throw new Error(`client ${cmd.client} already exists`);
    const state = clientState(cmd);
    clients.set(cmd.client, state);
    const base = pusherOptions(cmd, state);
    // Echo hands its whole option set to the constructor it is given, as it does in a browser.
    function InstrumentedPusher(key, options) {
      return currentClient.run(state.name, () => instrument(new Pusher(key, options), state));
    }
    state.echo = currentClient.run(state.name, () =>
      new Echo({
        broadcaster: "pusher",
        key: state.key,
        ...base,
        // pusher-js's "ws" transport follows forceTLS; "wss" is only its plain-ws fallback.
        enabledTransports: ["ws"],
        Pusher: InstrumentedPusher,
        ...(cmd.echoOptions ?? {}),
      }),
    );
    state.pusher = state.echo.connector.pusher;
    if (cmd.wait) return { socket_id: await waitConnected(state.pusher, cmd.waitMs ?? 4000) };
    return {};
  },

  async subscribe(cmd) {
    const state = getClient(cmd);
    if (cmd.presence !== undefined) state.channelPresence.set(cmd.channel, cmd.presence);
    const channel = watchChannel(state, state.pusher.subscribe(cmd.channel));
    if (cmd.wait) return await waitSubscription(channel, cmd.waitMs ?? 4000);
    return {};
  },

  unsubscribe(cmd) {
    getClient(cmd).pusher.unsubscribe(cmd.channel);
    return {};
  },

  trigger(cmd) {
    const state = getClient(cmd);
    return { result: pusherChannel(state, cmd.channel).trigger(cmd.event, cmd.data) };
  },

  send_event(cmd) {
    // A raw frame through pusher-js's own connection (for protocol-level checks).
    const state = getClient(cmd);
    return { result: state.pusher.send_event(cmd.event, cmd.data, cmd.channel) };
  },

  members(cmd) {
    const channel = pusherChannel(getClient(cmd), cmd.channel);
    if (!channel.members) throw new Error(`${cmd.channel} is not a presence channel`);
    return membersOf(channel);
  },

  async signin(cmd) {
    const state = getClient(cmd);
    if (cmd.user !== undefined) state.user = cmd.user;
    state.pusher.signin();
    if (cmd.wait) {
      await Promise.race([
        state.pusher.user.signinDonePromise,
        new Promise((_, reject) => setTimeout(() => reject(new Error("sign-in did not finish")), cmd.waitMs ?? 4000)),
      ]);
      return { user_data: state.pusher.user.user_data ?? null };
    }
    return {};
  },

  user_bind(cmd) {
    const state = getClient(cmd);
    state.pusher.user.bind(cmd.event, (data) => emit({ type: "user_event", client: state.name, source: "bind", event: cmd.event, data }));
    return {};
  },

  set_auth(cmd) {
    const state = getClient(cmd);
    for (const field of ["badAuth", "presence", "user", "masterKey", "secret"]) {
      if (cmd[field] !== undefined) state[field] = field === "badAuth" ? Boolean(cmd[field]) : cmd[field];
    }
    return {};
  },

  socket_id(cmd) {
    const state = getClient(cmd);
    return { socket_id: state.pusher.connection.socket_id ?? null, state: state.pusher.connection.state };
  },

  disconnect(cmd) {
    const state = getClient(cmd);
    if (state.echo) state.echo.disconnect();
    else state.pusher.disconnect();
    clients.delete(cmd.client);
    return {};
  },

  echo_listen(cmd) {
    const state = getClient(cmd);
    const channel = echoChannel(state, cmd, cmd.kind ?? "public");
    channel.listen(cmd.event, echoReport(state, cmd, channel, "listen", { event: cmd.event }));
    return { pusher_channel: channel.name };
  },

  echo_private(cmd) {
    const state = getClient(cmd);
    const channel = echoChannel(state, cmd, "private");
    if (cmd.event) channel.listen(cmd.event, echoReport(state, cmd, channel, "listen", { event: cmd.event }));
    return { pusher_channel: channel.name };
  },

  echo_encrypted(cmd) {
    const state = getClient(cmd);
    const channel = echoChannel(state, cmd, "encrypted");
    if (cmd.event) channel.listen(cmd.event, echoReport(state, cmd, channel, "listen", { event: cmd.event }));
    return { pusher_channel: channel.name };
  },

  echo_join(cmd) {
    const state = getClient(cmd);
    if (cmd.presence !== undefined) state.channelPresence.set(`presence-${cmd.channel}`, cmd.presence);
    const channel = echoChannel(state, cmd, "presence");
    channel
      .here(echoReport(state, cmd, channel, "here"))
      .joining(echoReport(state, cmd, channel, "joining"))
      .leaving(echoReport(state, cmd, channel, "leaving"));
    if (cmd.event) channel.listen(cmd.event, echoReport(state, cmd, channel, "listen", { event: cmd.event }));
    return { pusher_channel: channel.name };
  },

  echo_whisper(cmd) {
    const state = getClient(cmd);
    const channel = echoChannel(state, cmd, cmd.kind ?? "private");
    channel.whisper(cmd.event, cmd.data);
    return {};
  },

  echo_listen_for_whisper(cmd) {
    const state = getClient(cmd);
    const channel = echoChannel(state, cmd, cmd.kind ?? "private");
    channel.listenForWhisper(cmd.event, echoReport(state, cmd, channel, "whisper", { event: cmd.event }));
    return { pusher_channel: channel.name };
  },

  echo_error(cmd) {
    // Subscribing through echoChannel already reports .error() callbacks as kind "error".
    const state = getClient(cmd);
    return { pusher_channel: echoChannel(state, cmd, cmd.kind ?? "private").name };
  },

  echo_leave(cmd) {
    const state = getClient(cmd);
    if (cmd.full) state.echo.leaveChannel(cmd.channel);
    else state.echo.leave(cmd.channel);
    return {};
  },

  async rest(cmd) {
    const host = cmd.path ? `${cmd.host ?? "127.0.0.1"}:${cmd.port}${cmd.path}` : cmd.host ?? "127.0.0.1";
    const sdk = new PusherServer({
      appId: String(cmd.appId),
      key: cmd.key,
      secret: cmd.secret,
      host,
      ...(cmd.path ? {} : { port: String(cmd.port) }),
      useTLS: Boolean(cmd.tls),
      timeout: cmd.timeoutMs ?? 5000,
      ...(cmd.masterKey ? { encryptionMasterKeyBase64: cmd.masterKey } : {}),
    });
    const call = sdk[cmd.call];
    if (!["trigger", "triggerBatch", "get", "post", "sendToUser", "terminateUserConnections"].includes(cmd.call)) {
      throw new Error(`unsupported rest call ${JSON.stringify(cmd.call)}`);
    }
    try {
      const res = await call.apply(sdk, cmd.args ?? []);
      const text = await res.text();
      return { status: res.status, body: parseMaybe(text) };
    } catch (error) {
      if (error && error.status !== undefined) {
        return { ok: false, error: error.message, status: error.status, body: parseMaybe(error.body) };
      }
      throw error;
    }
  },

  // The Node SDK's webhook check: `headers` (names lower-cased, as Node's http gives them) and
  // the raw body as received; answers whether it is valid and what the SDK read from it.
  webhook(cmd) {
    const sdk = new PusherServer({ appId: String(cmd.appId), key: cmd.key, secret: cmd.secret });
    const hook = sdk.webhook({ headers: cmd.headers, rawBody: cmd.rawBody });
    const valid = hook.isValid();
    return valid ? { valid, time: hook.getTime().getTime(), events: hook.getEvents() } : { valid };
  },

  exit() {
    for (const state of clients.values()) {
      try {
        state.pusher.disconnect();
      } catch {
        // already gone
      }
    }
    clients.clear();
    setTimeout(() => process.exit(0), 50);
    return {};
  },
};

function parseMaybe(text) {
  if (typeof text !== "string") return text ?? null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function handle(line) {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (error) {
    return reply(null, false, { error: `invalid JSON: ${error.message}` });
  }
  const id = cmd?.id ?? null;
  const run = commands[cmd?.cmd];
  if (!run || !Object.hasOwn(commands, cmd.cmd)) return reply(id, false, { error: `unknown command ${JSON.stringify(cmd?.cmd)}` });
  try {
    const result = await run(cmd);
    const { ok = true, ...fields } = result ?? {};
    reply(id, ok, fields);
  } catch (error) {
    reply(id, false, { error: error?.message ?? String(error) });
  }
}

process.on("uncaughtException", (error) => emit({ type: "fatal", error }));
process.on("unhandledRejection", (error) => emit({ type: "fatal", error }));

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => void handle(line));
lines.on("close", () => commands.exit());
emit({ type: "ready", versions: { node: process.version, "pusher-js": require("pusher-js/package.json").version } });
