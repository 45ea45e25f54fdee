import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { LogEvent } from './types';

const NAMESPACE = 'jupyter-amltrain/api';

/**
 * The server extension's REST API, through Jupyter's own connection settings (base URL, token, XSRF), so it
 * works wherever JupyterLab does: behind proxies, under a base URL, in JupyterHub.
 */
export class AmlTrainApi {
  constructor(readonly settings: ServerConnection.ISettings) {}

  /** The workspace every request is about; empty: the server's default. */
  workspace = '';

  url(path: string, params: Record<string, string | number | boolean | null | undefined> = {}): string {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries({ ...params, workspace: this.workspace || null })) {
      if (value !== null && value !== undefined && value !== '') {
        query.set(key, String(value));
      }
    }
    const search = query.toString();
    return URLExt.join(this.settings.baseUrl, NAMESPACE, path) + (search ? `?${search}` : '');
  }

  async get<T>(path: string, params: Record<string, string | number | boolean | null | undefined> = {}): Promise<T> {
    return this.request<T>(this.url(path, params), { method: 'GET' });
  }

  async post<T>(path: string): Promise<T> {
    return this.request<T>(this.url(path), { method: 'POST', body: '' });
  }

  private async request<T>(url: string, init: RequestInit): Promise<T> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new ServerConnection.NetworkError(error as TypeError);
    }
    if (response.status === 404 && !(await isOurError(response.clone()))) {
      throw new Error(
        'The jupyter-amltrain server extension is not enabled on this Jupyter server. Run ' +
          '`jupyter server extension enable jupyter_amltrain` and restart JupyterLab.'
      );
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new ServerConnection.ResponseError(response, body.message || response.statusText);
    }
    return (await response.json()) as T;
  }

  /**
   * Follow a run's log as server-sent events until the run ends, `signal` aborts, or the connection drops
   * (then the promise settles and the caller may resume from the last offset it got).
   */
  async streamLog(
    runId: string,
    options: { file?: string | null; offset?: number; follow?: boolean },
    onEvent: (event: LogEvent) => void,
    signal: AbortSignal
  ): Promise<void> {
    const url = this.url(`runs/${encodeURIComponent(runId)}/logs/stream`, {
      file: options.file ?? null,
      offset: options.offset || null,
      follow: options.file && options.follow ? 'true' : null
    });
    const response = await ServerConnection.makeRequest(url, { method: 'GET', signal }, this.settings);
    if (!response.ok || !response.body) {
      const body = await response.json().catch(() => ({}));
      throw new ServerConnection.ResponseError(response, body.message || response.statusText);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      buffer += decoder.decode(value, { stream: true });
      let cut = buffer.indexOf('\n\n');
      while (cut >= 0) {
        const event = parseEvent(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (event) {
          onEvent(event);
        }
        cut = buffer.indexOf('\n\n');
      }
    }
  }
}

function parseEvent(block: string): LogEvent | null {
  let name = '';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) {
      name = line.slice(7);
    } else if (line.startsWith('data: ')) {
      data.push(line.slice(6));
    }
  }
  if (!name || !data.length) {
    return null; // a keep-alive comment
  }
  return { event: name, data: JSON.parse(data.join('\n')) } as LogEvent;
}

async function isOurError(response: Response): Promise<boolean> {
  const body = await response.json().catch(() => null);
  return !!body && typeof body.message === 'string' && body.message !== 'Not Found';
}
