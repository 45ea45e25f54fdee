// Shared helpers for the jupyter-amltrain views: DOM building, formatting, and small SVG line charts.
// Prepended by the kernel to each view's module (anywidget loads one module per view, without imports),
// so nothing here is exported and every name carries the aml prefix. No dependencies, no CDN.
// AML_STATUS_FAMILIES (status -> ok | failed | canceled | running | waiting) is written ahead of this file by
// the kernel (widgets/assets.py) from the engine's one list of run statuses (engine/runs/statuses.py).

const AML_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"];
const AML_SVG = "http://www.w3.org/2000/svg";
const AML_FAMILY_CLASSES = { ok: "aml-ok", failed: "aml-bad", canceled: "aml-muted", running: "aml-run",
  waiting: "aml-wait" };

/** An HTML element with attributes (class, text, on<event> handlers, others as attributes) and children. */
function amlEl(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of [].concat(children)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function amlSvgEl(tag, attrs = {}) {
  const node = document.createElementNS(AML_SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function amlFmt(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(2);
  return Number.isInteger(value) ? String(value) : value.toPrecision(4).replace(/\.?0+$/, "");
}

function amlClock(epoch) {
  if (epoch === null || epoch === undefined) return "–";
  return new Date(epoch * 1000).toLocaleTimeString([], { hour12: false });
}

function amlDateTime(epoch) {
  if (epoch === null || epoch === undefined) return "–";
  const d = new Date(epoch * 1000);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString([], { hour12: false })}`;
}

function amlDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, seconds);
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

function amlBytes(count) {
  if (count === null || count === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = count;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function amlStatusClass(status) {
  return AML_FAMILY_CLASSES[AML_STATUS_FAMILIES[status] || "waiting"];
}

function amlBadge(status) {
  return amlEl("span", { class: `aml-badge ${amlStatusClass(status)}`, text: status });
}

/** About `count` round tick values covering [min, max]. */
function amlTicks(min, max, count = 4) {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/**
 * A line chart as an SVG element. series: [{label, xs, ys, color?}]; null ys are gaps.
 * opts: {title, height, yMin, yMax, xFormat, yFormat, empty}.
 */
function amlLineChart(series, opts = {}) {
  const width = 360;
  const height = opts.height || 150;
  const pad = { left: 54, right: 10, top: opts.title ? 20 : 8, bottom: 22 };
  const svg = amlSvgEl("svg", { viewBox: `0 0 ${width} ${height}`, class: "aml-chart", role: "img" });
  if (opts.title) {
    const title = amlSvgEl("text", { x: pad.left, y: 13, class: "aml-chart-title" });
    title.textContent = opts.title;
    svg.append(title);
  }
  const points = [];
  for (const s of series) {
    for (let i = 0; i < s.xs.length; i++) {
      const y = s.ys[i];
      if (y !== null && y !== undefined && Number.isFinite(y)) points.push([s.xs[i], y]);
    }
  }
  if (!points.length) {
    const note = amlSvgEl("text", { x: width / 2, y: height / 2, class: "aml-chart-empty", "text-anchor": "middle" });
    note.textContent = opts.empty || "no data yet";
    svg.append(note);
    return svg;
  }
  let xMin = Math.min(...points.map((p) => p[0]));
  let xMax = Math.max(...points.map((p) => p[0]));
  let yMin = opts.yMin !== undefined ? opts.yMin : Math.min(...points.map((p) => p[1]));
  let yMax = opts.yMax !== undefined ? opts.yMax : Math.max(...points.map((p) => p[1]));
  if (xMax === xMin) { xMin -= 1; xMax += 1; }
  if (yMax === yMin) { const d = Math.abs(yMin) * 0.1 || 1; yMin -= d; yMax += d; }
  const sx = (x) => pad.left + ((x - xMin) / (xMax - xMin)) * (width - pad.left - pad.right);
  const sy = (y) => height - pad.bottom - ((y - yMin) / (yMax - yMin)) * (height - pad.top - pad.bottom);
  const yFormat = opts.yFormat || amlFmt;
  const xFormat = opts.xFormat || amlFmt;
  for (const tick of amlTicks(yMin, yMax)) {
    svg.append(amlSvgEl("line", { x1: pad.left, x2: width - pad.right, y1: sy(tick), y2: sy(tick), class: "aml-grid" }));
    const label = amlSvgEl("text", { x: pad.left - 4, y: sy(tick) + 3, class: "aml-axis", "text-anchor": "end" });
    label.textContent = yFormat(tick);
    svg.append(label);
  }
  const xTicks = amlTicks(xMin, xMax, 4);
  for (const tick of xTicks) {
    const label = amlSvgEl("text", { x: sx(tick), y: height - 6, class: "aml-axis", "text-anchor": "middle" });
    label.textContent = xFormat(tick);
    svg.append(label);
  }
  series.forEach((s, index) => {
    const color = s.color || AML_COLORS[index % AML_COLORS.length];
    let segment = [];
    const flush = () => {
      if (segment.length > 1) {
        svg.append(amlSvgEl("polyline", { points: segment.join(" "), class: "aml-line", stroke: color }));
      }
      segment = [];
    };
    let last = null;
    for (let i = 0; i < s.xs.length; i++) {
      const y = s.ys[i];
      if (y === null || y === undefined || !Number.isFinite(y)) { flush(); continue; }
      segment.push(`${sx(s.xs[i]).toFixed(1)},${sy(y).toFixed(1)}`);
      last = [s.xs[i], y];
    }
    flush();
    if (last) {
      const dot = amlSvgEl("circle", { cx: sx(last[0]), cy: sy(last[1]), r: 2.5, fill: color });
      const tip = amlSvgEl("title");
      tip.textContent = `${s.label || ""} ${xFormat(last[0])}: ${yFormat(last[1])}`.trim();
      dot.append(tip);
      svg.append(dot);
    }
  });
  return svg;
}

/** A chart with a legend below it (the legend only when there are several series). */
function amlChartBlock(series, opts = {}) {
  const block = amlEl("div", { class: "aml-chart-block" }, [amlLineChart(series, opts)]);
  if (series.length > 1) {
    block.append(amlEl("div", { class: "aml-legend" }, series.map((s, i) =>
      amlEl("span", {}, [
        amlEl("i", { style: `background:${s.color || AML_COLORS[i % AML_COLORS.length]}` }),
        s.label || `series ${i + 1}`,
      ]))));
  }
  return block;
}
