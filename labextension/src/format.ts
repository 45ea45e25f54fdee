import { MetricValue } from './types';

/**
 * The run statuses this extension names: a copy of the engine's one list (jupyter_amltrain/engine/runs/
 * statuses.py: TERMINAL and STATUS_FAMILIES), the only one in the TypeScript sources.
 * tests/unit/test_run_statuses.py checks that both lists here equal the engine's.
 */
export const TERMINAL = ['Completed', 'Failed', 'Canceled'];

/** Each status's family, one colour per family (an unknown status waits). */
export const STATUS_FAMILIES: Record<string, string> = {
  NotStarted: 'waiting',
  Queued: 'waiting',
  Preparing: 'waiting',
  Starting: 'waiting',
  Running: 'running',
  Finalizing: 'running',
  CancelRequested: 'canceled',
  Completed: 'ok',
  Failed: 'failed',
  Canceled: 'canceled'
};

export function duration(seconds: number | null): string {
  if (seconds === null || seconds === undefined) {
    return '';
  }
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s}s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m ${s % 60}s`;
  }
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function bytes(value: number | null): string {
  if (value === null || value === undefined) {
    return '?';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit++;
  }
  return `${size >= 10 || unit === 0 ? Math.round(size) : size.toFixed(1)} ${units[unit]}`;
}

export function ago(time: number | null): string {
  if (!time) {
    return '';
  }
  const seconds = Date.now() / 1000 - time;
  return seconds < 5 ? 'just now' : `${duration(seconds)} ago`;
}

export function metric(value: MetricValue): string {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) {
      return String(value);
    }
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(3) : value.toPrecision(4);
  }
  return String(value);
}

/** A CSS class for a status: one colour per family of statuses. */
export function statusClass(status: string): string {
  const family = STATUS_FAMILIES[status] ?? 'waiting';
  return `jp-AmlTrain-status jp-AmlTrain-status-${family}`;
}

/** `tag('div', {class: 'x'}, child, 'text')`: a DOM element, in one expression. */
export function tag<K extends keyof HTMLElementTagNameMap>(
  name: K,
  attributes: Record<string, string | number | boolean | null | undefined> = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (key === 'class') {
      element.className = String(value);
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      element.append(child);
    }
  }
  return element;
}
