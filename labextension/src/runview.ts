import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { AmlTrainApi } from './api';
import { lineChart } from './charts';
import { TERMINAL, duration, statusClass, tag } from './format';
import { IMetrics, IRunDetails, LogEvent } from './types';

const INTERVAL = 2000;
// Older output is dropped from the view beyond this, so a chatty job cannot slow the page down.
const MAX_LOG_CHARS = 2_000_000;
const FOLLOW = '';

/**
 * One run: status and facts, its log live (server-sent events, resumed from the last offset after a drop),
 * metric charts, and a cancel button. Nothing is requested while the view is hidden.
 */
export class RunView extends Widget {
  constructor(
    private readonly api: AmlTrainApi,
    readonly runId: string
  ) {
    super();
    this.addClass('jp-AmlTrain-runView');
    this.node.dataset.runId = runId;
    this.title.label = runId;
    this.title.closable = true;

    this.cancelButton.addEventListener('click', () => void this.cancel());
    this.fileSelect.addEventListener('change', () => this.switchLog(this.fileSelect.value));
    this.node.append(
      tag('header', { class: 'jp-AmlTrain-runHeader' }, this.heading, this.statusBadge, this.subStatus, this.cancelButton),
      this.facts,
      this.errorBox,
      tag('section', { class: 'jp-AmlTrain-logSection' }, tag('div', { class: 'jp-AmlTrain-row' }, tag('h3', {}, 'Log'), tag('label', {}, 'File ', this.fileSelect), this.logState), this.logView),
      tag('section', {}, tag('h3', {}, 'Metrics'), this.charts),
      tag('section', {}, tag('h3', {}, 'Status history'), this.history)
    );
    this.poll = new Poll({
      factory: () => this.refresh(),
      frequency: { interval: INTERVAL, backoff: true, max: 30 * 1000 },
      name: `jupyter-amltrain:run:${runId}`,
      standby: () => !this.isVisible || this.done || 'when-hidden'
    });
  }

  dispose(): void {
    this.stream?.abort();
    this.poll.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.poll.refresh();
    void this.follow();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    void this.follow();
  }

  protected onBeforeHide(msg: Message): void {
    super.onBeforeHide(msg);
    this.stream?.abort(); // resumed from the same offset when shown again
  }

  private async refresh(): Promise<void> {
    const [details, metrics] = await Promise.all([
      this.api.get<IRunDetails>(`runs/${encodeURIComponent(this.runId)}`),
      this.api.get<IMetrics>(`runs/${encodeURIComponent(this.runId)}/metrics`, { since: this.metricsVersion })
    ]);
    this.renderDetails(details);
    if (!metrics.unchanged) {
      this.metricsVersion = metrics.version;
      this.renderMetrics(metrics);
    }
    // One last refresh after the run ended (final metrics), then the poll rests.
    this.done = details.terminal && this.sawTerminal;
    this.sawTerminal = details.terminal;
  }

  private renderDetails(run: IRunDetails): void {
    this.title.label = `${run.experiment} #${run.number}`;
    this.title.caption = run.run_id;
    this.heading.textContent = `${run.experiment} #${run.number}`;
    this.setStatus(run.status, run.sub_status);
    this.cancelButton.disabled = run.terminal || run.status === 'CancelRequested';
    const fact = (name: string, value: string | number | null | undefined) =>
      value === null || value === undefined || value === '' ? null : tag('div', {}, tag('dt', {}, name), tag('dd', {}, String(value)));
    this.facts.replaceChildren(
      ...[
        fact('Run id', run.run_id),
        fact('Compute', run.target + (run.node !== null ? ` (node ${run.node})` : '')),
        fact('GPUs', run.gpus.length ? run.gpus.join(', ') : null),
        fact('Environment', run.environment),
        // How the job runs in its image (resolved at Preparing: engine/images/probe.py)
        fact('Interpreter', run.properties['amltrain.interpreter'] as string | undefined),
        fact('Runs as', run.properties['amltrain.user'] as string | undefined),
        fact('Script', run.script ? [run.script, ...run.arguments].join(' ') : run.command),
        fact('Started', run.started ? new Date(run.started * 1000).toLocaleString() : null),
        fact('Duration', duration(run.duration)),
        fact('Exit code', run.exit_code)
      ].filter((node): node is HTMLDivElement => node !== null)
    );
    this.errorBox.hidden = !run.error && !run.warnings.length;
    this.errorBox.replaceChildren(
      run.error ? tag('div', { class: 'jp-AmlTrain-error' }, run.error) : '',
      ...run.warnings.map(w => tag('div', { class: 'jp-AmlTrain-warning' }, w))
    );
    const files = [FOLLOW, ...run.log_files.map(f => f.name)];
    if (files.join('\n') !== Array.from(this.fileSelect.options).map(o => o.value).join('\n')) {
      const chosen = this.fileSelect.value;
      this.fileSelect.replaceChildren(
        tag('option', { value: FOLLOW }, 'current log (follow)'),
        ...run.log_files.map(f => tag('option', { value: f.name }, f.name))
      );
      this.fileSelect.value = files.includes(chosen) ? chosen : FOLLOW;
    }
    this.history.replaceChildren(
      ...run.history.map(h =>
        tag('li', {}, tag('span', { class: statusClass(h.status) }, h.status), ` ${new Date(h.time * 1000).toLocaleTimeString()} `, tag('span', { class: 'jp-AmlTrain-muted' }, h.subStatus))
      )
    );
    if (!run.terminal && this.ended) {
      this.ended = false; // a stream that stopped early is picked up again
      void this.follow();
    }
  }

  private setStatus(status: string, subStatus: string): void {
    this.statusBadge.className = statusClass(status);
    this.statusBadge.textContent = status;
    this.node.dataset.status = status;
    this.subStatus.textContent = TERMINAL.includes(status) ? '' : subStatus;
  }

  private renderMetrics(metrics: IMetrics): void {
    const series = metrics.series ?? {};
    const names = Object.keys(series);
    this.charts.replaceChildren(
      ...(names.length ? names.map(name => lineChart(name, series[name])) : [tag('p', { class: 'jp-AmlTrain-muted' }, 'No metric logged yet.')])
    );
  }

  /** Stream the log until the run ends; after a dropped connection, resume from the last offset. */
  private async follow(): Promise<void> {
    if (this.stream || this.ended || !this.isVisible || this.isDisposed) {
      return;
    }
    const controller = new AbortController();
    this.stream = controller;
    this.logState.textContent = 'live';
    try {
      await this.api.streamLog(
        this.runId,
        { file: this.logFile, offset: this.logOffset, follow: this.following },
        event => this.onLogEvent(event),
        controller.signal
      );
    } catch (error) {
      if (!controller.signal.aborted) {
        this.logState.textContent = `reconnecting (${(error as Error).message})`;
      }
    } finally {
      this.stream = null;
    }
    if (this.ended) {
      this.logState.textContent = 'complete';
    } else if (!controller.signal.aborted) {
      setTimeout(() => void this.follow(), INTERVAL);
    }
  }

  private onLogEvent(event: LogEvent): void {
    switch (event.event) {
      case 'file':
        if (event.data.file !== this.logFile) {
          if (this.logFile !== null) {
            this.append(`\n──── ${event.data.file} ────\n`);
          }
          this.logFile = event.data.file;
          this.logOffset = 0;
        }
        break;
      case 'log':
        this.append(event.data.text);
        this.logOffset = event.data.offset;
        break;
      case 'status':
        this.setStatus(event.data.status, event.data.sub_status);
        break;
      case 'end':
        this.ended = true;
        this.setStatus(event.data.status, '');
        void this.poll.refresh();
        break;
      case 'error':
        this.ended = true;
        this.logState.textContent = event.data.message;
        break;
    }
  }

  private append(text: string): void {
    const view = this.logView;
    const atBottom = view.scrollHeight - view.scrollTop - view.clientHeight < 24;
    let content = (view.textContent ?? '') + text;
    if (content.length > MAX_LOG_CHARS) {
      content = '…\n' + content.slice(content.indexOf('\n', content.length - MAX_LOG_CHARS) + 1);
    }
    view.textContent = content;
    if (atBottom) {
      view.scrollTop = view.scrollHeight;
    }
  }

  private switchLog(file: string): void {
    this.stream?.abort();
    this.logView.textContent = '';
    this.following = file === FOLLOW;
    this.logFile = file === FOLLOW ? null : file;
    this.logOffset = 0;
    this.ended = false;
    // follow() refuses while the aborted stream is settling; start after it has.
    setTimeout(() => void this.follow(), 0);
  }

  private async cancel(): Promise<void> {
    const answer = await showDialog({
      title: 'Cancel run?',
      body: `Stop ${this.runId}? Its container or process is stopped and the run ends as Canceled.`,
      buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel run' })]
    });
    if (!answer.button.accept) {
      return;
    }
    this.cancelButton.disabled = true;
    try {
      const result = await this.api.post<{ status: string }>(`runs/${encodeURIComponent(this.runId)}/cancel`);
      this.setStatus(result.status, '');
      this.done = false;
      this.sawTerminal = false;
      await this.poll.refresh();
    } catch (error) {
      this.cancelButton.disabled = false;
      await showDialog({ title: 'Cancel failed', body: (error as Error).message, buttons: [Dialog.okButton()] });
    }
  }

  readonly poll: Poll;
  private stream: AbortController | null = null;
  private logFile: string | null = null;
  private logOffset = 0;
  private following = true;
  private ended = false;
  private done = false;
  private sawTerminal = false;
  private metricsVersion: number | null = null;
  private readonly heading = tag('h2', {}, this.runId);
  private readonly statusBadge = tag('span', { class: 'jp-AmlTrain-status' });
  private readonly subStatus = tag('span', { class: 'jp-AmlTrain-muted' });
  private readonly cancelButton = tag('button', { class: 'jp-mod-styled jp-mod-warn jp-AmlTrain-cancel', 'data-action': 'cancel' }, 'Cancel run');
  private readonly facts = tag('dl', { class: 'jp-AmlTrain-facts' });
  private readonly errorBox = tag('div', { hidden: true });
  private readonly fileSelect = tag('select', { class: 'jp-AmlTrain-select' }, tag('option', { value: FOLLOW }, 'current log (follow)'));
  private readonly logState = tag('span', { class: 'jp-AmlTrain-muted' });
  private readonly logView = tag('pre', { class: 'jp-AmlTrain-log' });
  private readonly charts = tag('div', { class: 'jp-AmlTrain-charts' });
  private readonly history = tag('ol', { class: 'jp-AmlTrain-history' });
}
