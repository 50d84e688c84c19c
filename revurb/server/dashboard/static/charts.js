// Line charts on a <canvas>: one line per node, the last 15 minutes, no library.

export const COLORS = ["#5b4bdb", "#0f9d8a", "#e0792b", "#d23f6b", "#2b8ae0", "#8a9a16", "#7b5ea7"];
const WINDOW_SECONDS = 900;
const MIN_WINDOW_SECONDS = 60;

function compact(value) {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toFixed(1)}G`;
  if (abs >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(0)}k`;
  if (abs >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  if (abs > 0 && abs < 10 && !Number.isInteger(value)) return value.toFixed(2);
  return `${Math.round(value)}`;
}
export { compact };

/** The smallest of 1, 2, 5 times a power of ten at or above `value`. */
function niceCeil(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** Seconds the chart spans: from the oldest point, at least a minute, at most 15 minutes. */
function span(lines, now) {
  let oldest = now;
  for (const line of lines) if (line.points.length) oldest = Math.min(oldest, line.points[0][0]);
  return Math.min(WINDOW_SECONDS, Math.max(MIN_WINDOW_SECONDS, now - oldest));
}

/** Draws `lines` ([{color, points: [[t, v], ...]}]) ending at `now` (epoch seconds). */
export function drawChart(canvas, lines, now) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  const left = 36;
  const bottom = height - 14;
  const seconds = span(lines, now);
  const start = now - seconds;
  let top = 0;
  for (const line of lines) {
    for (const [t, v] of line.points) if (t >= start && v > top) top = v;
  }
  top = top > 0 ? niceCeil(top) : 1;
  context.strokeStyle = "#e4e4ee";
  context.fillStyle = "#8a8aa0";
  context.font = "10px system-ui, sans-serif";
  context.lineWidth = 1;
  for (const fraction of [0, 0.5, 1]) {
    const y = bottom - fraction * (bottom - 4);
    context.beginPath();
    context.moveTo(left, y);
    context.lineTo(width, y);
    context.stroke();
    context.fillText(compact(top * fraction), 2, y + 3);
  }
  context.fillText(seconds >= 120 ? `-${Math.round(seconds / 60)} min` : `-${Math.round(seconds)} s`, left, height - 2);
  context.fillText("now", width - 22, height - 2);
  const x = (t) => left + ((t - start) / seconds) * (width - left);
  const y = (v) => bottom - (v / top) * (bottom - 4);
  context.lineWidth = 1.5;
  for (const line of lines) {
    context.strokeStyle = line.color;
    context.beginPath();
    let drawn = false;
    for (const [t, v] of line.points) {
      if (t < start) continue;
      if (drawn) context.lineTo(x(t), y(v));
      else context.moveTo(x(t), y(v));
      drawn = true;
    }
    context.stroke();
  }
}
