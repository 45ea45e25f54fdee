import { Poll } from '@lumino/polling';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { AmlTrainApi } from './api';
import { meter } from './charts';
import { TERMINAL, ago, bytes, duration, metric, statusClass, tag } from './format';
import { ICompute, IEnvironments, IExperiment, IGpus, IRuns, IRunSummary, IWorkspace } from './types';

const PAGE = 25;
const INTERVAL = 2000;
// Listing environments asks Docker for its images: every few refreshes is live enough.
const ENVIRONMENTS_EVERY = 5;

/**
 * The left sidebar: GPUs, computes, environments and runs of the workspace, refreshed every two seconds
 * while the panel is visible, and not at all while it is hidden (collapsed sidebar or background tab).
 */
export class AmlTrainPanel extends Widget {
  constructor(
    private readonly api: AmlTrainApi,
    private readonly openRun: (runId: string) => void
  ) {
    super();
    this.id = 'jupyter-amltrain-panel';
    this.addClass('jp-AmlTrain-panel');
    this.title.caption = 'AML Train: GPUs, computes and runs';

    this.experimentSelect.addEventListener('change', () => {
      this.experiment = this.experimentSelect.value;
      this.offset = 0;
      void this.poll.refresh();
    });
    const refresh = tag('button', { class: 'jp-AmlTrain-iconButton', title: 'Refresh now', 'aria-label': 'Refresh' }, '⟳');
    refresh.addEventListener('click', () => {
      this.tick = 0;
      void this.poll.refresh();
    });
    this.node.append(
      tag('header', { class: 'jp-AmlTrain-header' }, tag('h2', {}, 'AML Train'), this.workspaceLabel, refresh),
      this.errorBox,
      this.section('GPUs', 'gpus', this.gpusBox),
      this.section('Computes', 'computes', this.computesBox),
      this.section('Environments', 'environments', this.environmentsBox),
      this.section(
        'Runs',
        'runs',
        tag('div', { class: 'jp-AmlTrain-filters' }, tag('label', {}, 'Experiment ', this.experimentSelect)),
        this.runsBox,
        this.pager
      )
    );
    this.poll = new Poll({
      factory: () => this.refresh(),
      frequency: { interval: INTERVAL, backoff: true, max: 30 * 1000 },
      name: 'jupyter-amltrain:panel',
      // Not shown (sidebar collapsed, another panel on top): no requests at all. Shown: none while the
      // browser tab is hidden either.
      standby: () => !this.isVisible || 'when-hidden'
    });
  }

  dispose(): void {
    this.poll.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.poll.refresh();
  }

  private section(title: string, key: string, ...content: HTMLElement[]): HTMLElement {
    const details = tag('details', { class: 'jp-AmlTrain-section', 'data-section': key, open: true }, tag('summary', {}, title));
    details.append(...content);
    return details;
  }

  private async refresh(): Promise<void> {
    const environments = this.tick++ % ENVIRONMENTS_EVERY === 0;
    try {
      const [workspace, gpus, computes, experiments, runs, envs] = await Promise.all([
        this.workspace ? Promise.resolve(this.workspace) : this.api.get<IWorkspace>('workspace'),
        this.api.get<IGpus>('gpus'),
        this.api.get<{ computes: ICompute[] }>('computes'),
        this.api.get<{ experiments: IExperiment[] }>('experiments'),
        this.api.get<IRuns>('runs', { experiment: this.experiment, limit: PAGE, offset: this.offset }),
        environments ? this.api.get<IEnvironments>('environments') : Promise.resolve(null)
      ]);
      this.workspace = workspace;
      this.workspaceLabel.textContent = `workspace ${workspace.name}`;
      this.errorBox.hidden = true;
      this.renderGpus(gpus);
      this.renderComputes(computes.computes);
      if (envs) {
        this.renderEnvironments(envs);
      }
      this.renderExperiments(experiments.experiments);
      this.renderRuns(runs);
    } catch (error) {
      this.errorBox.hidden = false;
      this.errorBox.textContent = `Cannot reach the jupyter-amltrain API: ${(error as Error).message}`;
      throw error; // the poll backs off
    }
  }

  private runLink(runId: string, text?: string): HTMLElement {
    const link = tag('a', { href: '#', class: 'jp-AmlTrain-runLink', 'data-run-id': runId, title: runId }, text ?? runId);
    link.addEventListener('click', event => {
      event.preventDefault();
      this.openRun(runId);
    });
    return link;
  }

  private renderGpus(gpus: IGpus): void {
    const list = tag('ul', { class: 'jp-AmlTrain-list' });
    for (const gpu of gpus.gpus) {
      const memory =
        gpu.memory_total_bytes && gpu.memory_used_bytes !== null ? gpu.memory_used_bytes / gpu.memory_total_bytes : null;
      list.append(
        tag(
          'li',
          { class: 'jp-AmlTrain-gpu', 'data-gpu': gpu.index },
          tag('div', { class: 'jp-AmlTrain-row' }, tag('strong', {}, `GPU ${gpu.index}`), tag('span', { class: 'jp-AmlTrain-muted' }, gpu.name)),
          gpu.declared
            ? null
            : meter((gpu.utilization_pct ?? 0) / 100, `util ${gpu.utilization_pct ?? '?'}%`),
          gpu.declared ? null : meter(memory, `mem ${bytes(gpu.memory_used_bytes)} / ${bytes(gpu.memory_total_bytes)}`),
          tag(
            'div',
            { class: 'jp-AmlTrain-row' },
            gpu.holder ? tag('span', {}, 'held by ', this.runLink(gpu.holder)) : tag('span', { class: 'jp-AmlTrain-muted' }, 'free'),
            gpu.temperature_c !== null ? tag('span', { class: 'jp-AmlTrain-muted' }, `${gpu.temperature_c}°C`) : null
          )
        )
      );
    }
    this.gpusBox.replaceChildren(
      gpus.message ? tag('p', { class: 'jp-AmlTrain-muted' }, gpus.message) : '',
      gpus.gpus.length ? list : ''
    );
  }

  private renderComputes(computes: ICompute[]): void {
    const list = tag('ul', { class: 'jp-AmlTrain-list' });
    for (const compute of computes) {
      const capacity = compute.max_nodes === null ? 'no node limit' : `${compute.busy}/${compute.max_nodes} nodes busy`;
      const nodes = tag('ul', { class: 'jp-AmlTrain-nodes' });
      for (const node of compute.nodes) {
        nodes.append(
          tag(
            'li',
            { 'data-node': node.index },
            node.run_id
              ? tag('span', {}, `node ${node.index}: `, this.runLink(node.run_id), ` ${node.status ?? ''}`, node.gpus.length ? ` GPUs ${node.gpus.join(',')}` : '')
              : tag('span', { class: 'jp-AmlTrain-muted' }, `node ${node.index}: idle`)
          )
        );
      }
      const queue = tag('ol', { class: 'jp-AmlTrain-queue' });
      for (const waiting of compute.queue) {
        queue.append(tag('li', {}, this.runLink(waiting.run_id), tag('span', { class: 'jp-AmlTrain-muted' }, ` ${waiting.sub_status || waiting.status}`)));
      }
      list.append(
        tag(
          'li',
          { class: 'jp-AmlTrain-compute', 'data-compute': compute.name },
          tag(
            'div',
            { class: 'jp-AmlTrain-row' },
            tag('strong', {}, compute.name),
            tag('span', { class: 'jp-AmlTrain-muted' }, [compute.vm_size, capacity].filter(Boolean).join(' · '))
          ),
          compute.nodes.length ? nodes : '',
          compute.queue.length ? tag('div', { class: 'jp-AmlTrain-muted' }, `queue: ${compute.queue.length} waiting`) : '',
          compute.queue.length ? queue : ''
        )
      );
    }
    this.computesBox.replaceChildren(list);
  }

  private renderEnvironments(envs: IEnvironments): void {
    const list = tag('ul', { class: 'jp-AmlTrain-list' });
    for (const env of envs.environments) {
      list.append(
        tag(
          'li',
          { class: 'jp-AmlTrain-environment', 'data-environment': env.name, 'data-state': env.state },
          tag(
            'div',
            { class: 'jp-AmlTrain-row' },
            tag('strong', {}, env.name),
            tag('span', { class: 'jp-AmlTrain-muted' }, env.version === null ? 'unregistered' : `v${env.version}`),
            tag('span', { class: `jp-AmlTrain-badge jp-AmlTrain-image-${env.state.replace(/ /g, '-')}`, title: env.detail }, env.state)
          ),
          env.image ? tag('code', { class: 'jp-AmlTrain-image', title: env.image }, env.image) : '',
          env.interpreter ? tag('div', { class: 'jp-AmlTrain-muted jp-AmlTrain-interpreter' }, `${env.interpreter}, runs as ${env.user}`) : '',
          tag('div', { class: 'jp-AmlTrain-muted' }, `${env.runs} run${env.runs === 1 ? '' : 's'}${env.last_used ? `, last ${ago(env.last_used)}` : ''}`)
        )
      );
    }
    this.environmentsBox.replaceChildren(
      envs.docker.reachable === false ? tag('p', { class: 'jp-AmlTrain-muted' }, envs.docker.message) : '',
      envs.environments.length ? list : tag('p', { class: 'jp-AmlTrain-muted' }, 'No environment yet.')
    );
  }

  private renderExperiments(experiments: IExperiment[]): void {
    const total = experiments.reduce((sum, e) => sum + e.runs, 0);
    const wanted = [''].concat(experiments.map(e => e.name));
    const current = Array.from(this.experimentSelect.options).map(o => o.value);
    if (wanted.join('\n') === current.join('\n')) {
      this.experimentSelect.options[0].textContent = `All experiments (${total})`;
      experiments.forEach((e, i) => (this.experimentSelect.options[i + 1].textContent = `${e.name} (${e.runs})`));
      return;
    }
    this.experimentSelect.replaceChildren(
      tag('option', { value: '' }, `All experiments (${total})`),
      ...experiments.map(e => tag('option', { value: e.name }, `${e.name} (${e.runs})`))
    );
    this.experimentSelect.value = wanted.includes(this.experiment) ? this.experiment : '';
  }

  private renderRuns(runs: IRuns): void {
    const list = tag('ul', { class: 'jp-AmlTrain-list jp-AmlTrain-runs' });
    for (const run of runs.runs) {
      list.append(this.runItem(run));
    }
    this.runsBox.replaceChildren(runs.runs.length ? list : tag('p', { class: 'jp-AmlTrain-muted' }, 'No run yet.'));
    const first = runs.total ? runs.offset + 1 : 0;
    const last = runs.offset + runs.runs.length;
    const newer = tag('button', { class: 'jp-mod-styled', disabled: runs.offset === 0 }, 'Newer');
    const older = tag('button', { class: 'jp-mod-styled', disabled: last >= runs.total }, 'Older');
    newer.addEventListener('click', () => {
      this.offset = Math.max(0, this.offset - PAGE);
      void this.poll.refresh();
    });
    older.addEventListener('click', () => {
      this.offset += PAGE;
      void this.poll.refresh();
    });
    this.pager.replaceChildren(newer, tag('span', { class: 'jp-AmlTrain-muted' }, `${first}–${last} of ${runs.total}`), older);
  }

  private runItem(run: IRunSummary): HTMLElement {
    const metrics = Object.entries(run.metrics)
      .slice(0, 3)
      .map(([name, value]) => `${name} ${metric(value)}`)
      .join(' · ');
    const item = tag(
      'li',
      { class: 'jp-AmlTrain-run', 'data-run-id': run.run_id, 'data-status': run.status, 'data-experiment': run.experiment, tabindex: 0, title: run.run_id },
      tag(
        'div',
        { class: 'jp-AmlTrain-row' },
        tag('span', { class: statusClass(run.status) }, run.status),
        tag('strong', {}, `${run.experiment} #${run.number}`),
        tag('span', { class: 'jp-AmlTrain-muted jp-AmlTrain-right' }, duration(run.duration))
      ),
      run.sub_status && !TERMINAL.includes(run.status)
        ? tag('div', { class: 'jp-AmlTrain-muted jp-AmlTrain-ellipsis' }, run.sub_status)
        : '',
      metrics ? tag('div', { class: 'jp-AmlTrain-metrics' }, metrics) : ''
    );
    const open = () => this.openRun(run.run_id);
    item.addEventListener('click', open);
    item.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        open();
      }
    });
    return item;
  }

  readonly poll: Poll;
  private tick = 0;
  private offset = 0;
  private experiment = '';
  private workspace: IWorkspace | null = null;
  private readonly workspaceLabel = tag('span', { class: 'jp-AmlTrain-muted' });
  private readonly errorBox = tag('div', { class: 'jp-AmlTrain-error', hidden: true });
  private readonly gpusBox = tag('div', {});
  private readonly computesBox = tag('div', {});
  private readonly environmentsBox = tag('div', {}, tag('p', { class: 'jp-AmlTrain-muted' }, 'Loading…'));
  private readonly runsBox = tag('div', {});
  private readonly pager = tag('div', { class: 'jp-AmlTrain-pager' });
  private readonly experimentSelect = tag('select', { class: 'jp-AmlTrain-select' }, tag('option', { value: '' }, 'All experiments'));
}
