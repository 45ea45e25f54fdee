import { metric } from './format';
import { ISeries } from './types';

const SVG = 'http://www.w3.org/2000/svg';

function svg<K extends keyof SVGElementTagNameMap>(name: K, attributes: Record<string, string | number>): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) {
    element.setAttribute(key, String(value));
  }
  return element;
}

/** The finite numeric points of a series (the API writes NaN and infinities as strings; they are skipped). */
export function points(series: ISeries): [number, number][] {
  const result: [number, number][] = [];
  series.values.forEach((value, i) => {
    const step = series.steps[i];
    if (typeof value === 'number' && Number.isFinite(value) && typeof step === 'number') {
      result.push([step, value]);
    }
  });
  return result;
}

/** A small line chart of one metric as SVG: the curve, its range, first and last step, the last value. */
export function lineChart(name: string, series: ISeries, width = 280, height = 110): HTMLElement {
  const figure = document.createElement('figure');
  figure.className = 'jp-AmlTrain-chart';
  figure.dataset.metric = name;
  const data = points(series);
  const caption = document.createElement('figcaption');
  const last = data.length ? data[data.length - 1][1] : null;
  caption.textContent = last === null ? name : `${name}: ${metric(last)}`;
  figure.append(caption);
  if (!data.length) {
    return figure;
  }
  const pad = { left: 44, right: 6, top: 6, bottom: 16 };
  const xs = data.map(p => p[0]);
  const ys = data.map(p => p[1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) {
    [x0, x1] = [x0 - 1, x1 + 1];
  }
  if (y0 === y1) {
    [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  }
  const sx = (x: number) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (y: number) => height - pad.bottom - ((y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  root.append(
    svg('line', { x1: pad.left, y1: height - pad.bottom, x2: width - pad.right, y2: height - pad.bottom, class: 'jp-AmlTrain-axis' }),
    svg('line', { x1: pad.left, y1: pad.top, x2: pad.left, y2: height - pad.bottom, class: 'jp-AmlTrain-axis' })
  );
  const labels: [number, number, string, string][] = [
    [pad.left - 4, pad.top + 8, metric(y1), 'end'],
    [pad.left - 4, height - pad.bottom, metric(y0), 'end'],
    [pad.left, height - 3, metric(x0), 'start'],
    [width - pad.right, height - 3, metric(x1), 'end']
  ];
  for (const [x, y, text, anchor] of labels) {
    const label = svg('text', { x, y, 'text-anchor': anchor, class: 'jp-AmlTrain-tick' });
    label.textContent = text;
    root.append(label);
  }
  if (data.length === 1) {
    root.append(svg('circle', { cx: sx(data[0][0]), cy: sy(data[0][1]), r: 3, class: 'jp-AmlTrain-dot' }));
  } else {
    const path = data.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    root.append(svg('polyline', { points: path, class: 'jp-AmlTrain-line' }));
  }
  figure.append(root);
  return figure;
}

/** A horizontal bar (0 to 100%) for utilization and memory. */
export function meter(fraction: number | null, label: string): HTMLElement {
  const outer = document.createElement('div');
  outer.className = 'jp-AmlTrain-meter';
  outer.title = label;
  const inner = document.createElement('div');
  inner.className = 'jp-AmlTrain-meter-fill';
  inner.style.width = `${Math.round(Math.max(0, Math.min(1, fraction ?? 0)) * 100)}%`;
  const text = document.createElement('span');
  text.textContent = label;
  outer.append(inner, text);
  return outer;
}
