import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';

import { AmlTrainApi } from './api';
import { amltrainIcon } from './icon';
import { AmlTrainPanel } from './panel';
import { RunView } from './runview';

const OPEN_RUN = 'jupyter-amltrain:open-run';

/**
 * The jupyter-amltrain sidebar: GPUs, computes, environments and runs of the workspace, and a view per run
 * with its live log, metric charts and a cancel button. Data comes from the server extension's REST API.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-amltrain:plugin',
  description: 'Sidebar panel for local Azure ML SDK v1-style training runs: GPUs, computes, environments, runs.',
  autoStart: true,
  optional: [ILayoutRestorer],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null) => {
    const api = new AmlTrainApi(app.serviceManager.serverSettings);
    const tracker = new WidgetTracker<MainAreaWidget<RunView>>({ namespace: 'jupyter-amltrain-run' });

    app.commands.addCommand(OPEN_RUN, {
      label: args => (args.runId ? `Open run ${args.runId}` : 'Open run'),
      caption: 'Open a run with its live log, metrics and a cancel button',
      execute: args => {
        const runId = String(args.runId ?? '');
        if (!runId) {
          return;
        }
        const open = tracker.find(widget => widget.content.runId === runId);
        if (open) {
          app.shell.activateById(open.id);
          return open;
        }
        const view = new RunView(api, runId);
        const widget = new MainAreaWidget({ content: view });
        widget.id = `jupyter-amltrain-run-${runId}`;
        widget.title.icon = amltrainIcon;
        // The tab shows what RunView learns (experiment and number).
        view.title.changed.connect(() => {
          widget.title.label = view.title.label;
          widget.title.caption = view.title.caption;
        });
        widget.title.label = runId;
        void tracker.add(widget);
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    const panel = new AmlTrainPanel(api, runId => void app.commands.execute(OPEN_RUN, { runId }));
    panel.title.icon = amltrainIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(panel, panel.id);
      void restorer.restore(tracker, {
        command: OPEN_RUN,
        args: widget => ({ runId: widget.content.runId }),
        name: widget => widget.content.runId
      });
    }
  }
};

export default plugin;
