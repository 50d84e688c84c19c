// A bare-TCP connect generator: the cycle of `bench/run connect` with as little client work as can be.
//
// Each cycle opens a socket, sends the upgrade, reads `pusher:connection_established`, subscribes to a
// public channel, reads `pusher_internal:subscription_succeeded`, sends a close frame and waits for the
// server's close. With `ws` a cycle costs the generator about as much CPU as it costs the server
// (an http.ClientRequest, a random key and its SHA-1 check, stream machinery, JSON parsing), so on two
// cores the figure measured was the generator's. Here every byte a client sends is built once: the
// handshake (a fixed Sec-WebSocket-Key: the accept value is not checked, the server is trusted), the
// masked subscribe frame and the masked close frame (a fixed mask: a server must not care). Replies
// are recognised by scanning the frame bytes, with no string decoding and no JSON.
import net from "node:net";
import { performance } from "node:perf_hooks";
import { eachFrame } from "./rawclient.mjs";

const HEAD_END = Buffer.from("\r\n\r\n");
const STATUS_101 = Buffer.from("HTTP/1.1 101");
const ESTABLISHED = Buffer.from("pusher:connection_established");
const SUCCEEDED = Buffer.from("pusher_internal:subscription_succeeded");
const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
const OP_TEXT = 1;
const OP_CLOSE = 8;
const NORMAL_CLOSURE = 1000;
const READ_BUFFER = Buffer.allocUnsafe(1 << 16);

/** A masked client frame of a payload under 126 bytes. */
function maskedFrame(opcode, payload) {
  const out = Buffer.allocUnsafe(6 + payload.length);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | payload.length;
  MASK.copy(out, 2);
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i] ^ MASK[i & 3];
  return out;
}

const Stage = { HANDSHAKE: 0, ESTABLISHED: 1, SUBSCRIBED: 2, CLOSING: 3 };

/**
 * Run `total` cycles, `concurrency` at a time, against `host:port` `path`, subscribing to `channel`.
 * `onCycle(ms)` hears each cycle's time from connect to the subscription ack; `onFailure(message)`
 * each failed cycle. Resolves once every cycle has finished or failed.
 */
export function runCycles({ host, port, path, channel, total, concurrency, timeoutMs, onCycle, onFailure }) {
  const handshake = Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  const subscribe = maskedFrame(OP_TEXT, Buffer.from(JSON.stringify({ event: "pusher:subscribe", data: { channel } })));
  const code = Buffer.allocUnsafe(2);
  code.writeUInt16BE(NORMAL_CLOSURE, 0);
  const close = maskedFrame(OP_CLOSE, code);

  return new Promise((resolve) => {
    let started = 0;
    let finished = 0;

    function cycle() {
      started++;
      const begun = performance.now();
      let stage = Stage.HANDSHAKE;
      let pending = null;
      let done = false;
      const timer = setTimeout(() => end(`timed out at stage ${stage}`), timeoutMs);
      const socket = net.connect({
        host,
        port,
        noDelay: true,
        onread: { buffer: READ_BUFFER, callback: (size, buf) => read(buf.subarray(0, size)) },
      });
      socket.write(handshake);
      socket.on("error", (error) => end(error.message));
      socket.on("close", () => end(stage === Stage.CLOSING ? null : `closed at stage ${stage}`));

      function end(failure) {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        if (failure !== null) onFailure(failure);
        finished++;
        if (started < total) cycle();
        else if (finished === total) resolve();
      }

      function read(data) {
        let buf = data;
        if (pending !== null) {
          buf = Buffer.concat([pending, data]);
          pending = null;
        }
        let at = 0;
        if (stage === Stage.HANDSHAKE) {
          const head = buf.indexOf(HEAD_END);
          if (head < 0) {
            pending = Buffer.from(buf);
            return;
          }
          if (buf.compare(STATUS_101, 0, STATUS_101.length, 0, STATUS_101.length) !== 0) {
            end(`handshake answered ${buf.toString("latin1", 0, Math.min(head, 40))}`);
            return;
          }
          stage = Stage.ESTABLISHED;
          at = head + 4;
        }
        at = eachFrame(buf, at, (opcode, start, stop) => {
          if (opcode === OP_CLOSE) {
            end(stage === Stage.CLOSING ? null : "the server closed the socket");
          } else if (opcode === OP_TEXT && stage === Stage.ESTABLISHED) {
            if (buf.indexOf(ESTABLISHED, start) >= 0) {
              stage = Stage.SUBSCRIBED;
              socket.write(subscribe);
            }
          } else if (opcode === OP_TEXT && stage === Stage.SUBSCRIBED) {
            const found = buf.indexOf(SUCCEEDED, start);
            if (found >= 0 && found < stop) {
              onCycle(performance.now() - begun);
              stage = Stage.CLOSING;
              socket.write(close);
            } else {
              end(`expected the subscription ack, got ${buf.toString("utf8", start, Math.min(stop, start + 120))}`);
            }
          }
        });
        if (at < buf.length && !done) pending = Buffer.from(buf.subarray(at));
      }
    }

    for (let i = 0; i < Math.min(concurrency, total); i++) cycle();
  });
}
