// A bare-TCP Pusher subscriber for the load generator's receive paths.
//
// `ws` costs the generator about 15 µs of CPU per delivered frame (stream machinery, one Buffer per
// read, one per message). On a two-core machine that shares its cores with the server, that cost is
// what a latency run ends up measuring: 250 deliveries of one event take the generator ~4 ms to
// read, whatever the server does. This client reads with `net`'s `onread` into one reused buffer and
// parses the server's unmasked frames in place, so a delivery costs little more than the read call.
import { randomBytes } from "node:crypto";
import net from "node:net";
import { performance } from "node:perf_hooks";

const STAMP = Buffer.from("T:");
const PING = Buffer.from("pusher:ping");
const ERROR = Buffer.from("pusher:error");
const HEAD_END = Buffer.from("\r\n\r\n");
const PONG = '{"event":"pusher:pong","data":{}}';
const OP_TEXT = 1;
const OP_CLOSE = 8;
const OP_PING = 9;
const OP_PONG = 10;

// `onread` fills this buffer and calls back synchronously; whatever a callback keeps, it copies.
const READ_BUFFER = Buffer.allocUnsafe(1 << 20);

/** The decimal number right after "T:" at `from`, read from the bytes. */
export function stampAt(buf, from) {
  let value = 0;
  let scale = 0;
  for (let i = from; i < buf.length; i++) {
    const c = buf[i];
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      if (scale) scale *= 10;
    } else if (c === 46 && !scale) {
      scale = 1;
    } else break;
  }
  return scale ? value / scale : value;
}

/**
 * Walk the complete server frames (unmasked) in `buf` from `at`: `visit(opcode, start, end)` for
 * each payload. Returns where the first incomplete frame starts (`buf.length` if none).
 */
export function eachFrame(buf, at, visit) {
  while (at + 2 <= buf.length) {
    const opcode = buf[at] & 0x0f;
    let length = buf[at + 1] & 0x7f;
    let start = at + 2;
    if (length === 126) {
      if (start + 2 > buf.length) break;
      length = buf.readUInt16BE(at + 2);
      start += 2;
    } else if (length === 127) {
      if (start + 8 > buf.length) break;
      length = Number(buf.readBigUInt64BE(at + 2));
      start += 8;
    }
    const end = start + length;
    if (end > buf.length) break;
    visit(opcode, start, end);
    at = end;
  }
  return at;
}

/** A client frame (clients must mask). */
function frame(opcode, payload) {
  const length = payload.length;
  const head = length < 126 ? 2 : 4;
  const out = Buffer.allocUnsafe(head + 4 + length);
  out[0] = 0x80 | opcode;
  if (length < 126) {
    out[1] = 0x80 | length;
  } else {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(length, 2);
  }
  const mask = randomBytes(4);
  mask.copy(out, head);
  for (let i = 0; i < length; i++) out[head + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

/**
 * One Pusher connection. `subscribe(channels)` resolves once every channel is confirmed; then each
 * text frame carrying "T:<ms>" calls `onStamp(sendTime, now)` (one clock read per TCP read).
 * `onProblem(kind, detail)` hears of `pusher:error` frames and closes nobody asked for.
 */
export class RawSubscriber {
  constructor({ host, port, path, onStamp, onProblem }) {
    this.host = host;
    this.port = port;
    this.path = path;
    this.onStamp = onStamp;
    this.onProblem = onProblem;
    this.socket = null;
    this.pending = null;
    this.upgraded = false;
    this.expectedClose = false;
    this.closed = false;
    this.closeCode = null; // the code of the server's close frame, once read
    this.setup = null; // {channels: Set, resolve, reject} until every subscription succeeded
  }

  /** Connect, wait for `connection_established`, subscribe, wait for every success. */
  open(channels, timeoutMs) {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      let established = -1;
      const timer = setTimeout(() => fail(new Error("timed out connecting/subscribing")), timeoutMs);
      const fail = (error) => {
        if (this.setup === null) return;
        this.setup = null;
        clearTimeout(timer);
        this.destroy();
        reject(error);
      };
      this.setup = {
        pending: new Set(channels),
        established: () => {
          established = performance.now();
          for (const channel of channels) this.sendText(JSON.stringify({ event: "pusher:subscribe", data: { channel } }));
          if (channels.length === 0) this.setup.done();
        },
        done: () => {
          this.setup = null;
          clearTimeout(timer);
          resolve({ connectMs: established - started });
        },
        fail,
      };
      const socket = net.connect({
        host: this.host,
        port: this.port,
        noDelay: true,
        onread: { buffer: READ_BUFFER, callback: (size, buf) => this.onRead(buf.subarray(0, size)) },
      });
      this.socket = socket;
      socket.once("connect", () => {
        const key = randomBytes(16).toString("base64");
        socket.write(
          `GET ${this.path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nUpgrade: websocket\r\n` +
            `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      socket.on("error", (error) => {
        if (this.setup !== null) fail(error);
        else if (!this.expectedClose) this.onProblem("socket", error.message);
      });
      socket.on("close", () => {
        this.closed = true;
        if (this.setup !== null) fail(new Error("closed while setting up"));
        else if (!this.expectedClose) this.onProblem("close", "the server closed the socket");
      });
    });
  }

  onRead(data) {
    const now = performance.now();
    let buf = data;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, data]);
      this.pending = null;
    }
    let at = 0;
    if (!this.upgraded) {
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        this.pending = Buffer.from(buf);
        return;
      }
      const status = buf.toString("latin1", 9, 12);
      if (status !== "101") {
        this.setup?.fail(new Error(`handshake answered ${buf.toString("latin1", 0, end).split("\r\n")[0]}`));
        return;
      }
      this.upgraded = true;
      at = end + 4;
    }
    at = eachFrame(buf, at, (opcode, start, end) => {
      if (opcode === OP_TEXT) this.onText(buf, start, end, now);
      else if (opcode === OP_PING) this.write(frame(OP_PONG, buf.subarray(start, end)));
      else if (opcode === OP_CLOSE) this.onClose(end - start >= 2 ? buf.readUInt16BE(start) : 1005);
    });
    // The read buffer is reused: keep a copy of an incomplete frame.
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at));
  }

  onText(buf, start, end, now) {
    const stamp = buf.indexOf(STAMP, start);
    if (stamp >= 0 && stamp < end && this.setup === null) {
      this.onStamp(stampAt(buf, stamp + 2), now);
      return;
    }
    const ping = buf.indexOf(PING, start);
    if (ping >= 0 && ping < end) {
      this.sendText(PONG);
      return;
    }
    const error = buf.indexOf(ERROR, start);
    if (error >= 0 && error < end) {
      const text = buf.toString("utf8", start, end);
      if (this.setup !== null) this.setup.fail(new Error(text));
      else this.onProblem("pusher:error", text);
      return;
    }
    const setup = this.setup;
    if (setup === null) return;
    const message = JSON.parse(buf.toString("utf8", start, end));
    if (message.event === "pusher:connection_established") {
      setup.established();
    } else if (message.event === "pusher_internal:subscription_succeeded") {
      setup.pending.delete(message.channel);
      if (setup.pending.size === 0) setup.done();
    } else if (message.event === "pusher:subscription_error") {
      setup.fail(new Error(`subscription error on ${message.channel}: ${JSON.stringify(message.data)}`));
    }
  }

  onClose(code) {
    this.closeCode = code;
    if (!this.expectedClose) {
      if (this.setup !== null) this.setup.fail(new Error(`closed ${code} while setting up`));
      else this.onProblem("close", code);
      this.expectedClose = true; // counted once, not again when TCP closes
    }
    this.destroy();
  }

  /** Stop reading from the socket (a consumer that has stalled), until `resume`. */
  pause() {
    this.socket.pause();
  }

  resume() {
    this.socket.resume();
  }

  sendText(text) {
    this.write(frame(OP_TEXT, Buffer.from(text)));
  }

  write(data) {
    if (!this.closed) this.socket.write(data);
  }

  /** A clean close: a close frame (1000), then the server closes TCP. */
  close() {
    this.expectedClose = true;
    const code = Buffer.allocUnsafe(2);
    code.writeUInt16BE(1000, 0);
    this.write(frame(OP_CLOSE, code));
  }

  destroy() {
    this.closed = true;
    this.socket?.destroy();
  }
}
