// The sidebar panel in a real JupyterLab, driven through Debian's chromium with playwright-core.
//
// Started by test_panel_ui.py, which runs `jupyter lab` on a project folder and passes LAB_URL, LAB_TOKEN,
// NOTEBOOK, CHROMIUM and ARTIFACTS. Scenario: open the panel; run the notebook, which submits two runs to a
// one-node compute; watch the first reach Completed in the panel and show its log lines and metric chart in
// its run view; open the second (it held the node after the first) and cancel it from its run view; hide the
// panel and count its requests (none), show it again (they resume). Every
// wait is bounded; the last line printed is a JSON summary the pytest side checks against the store.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const { LAB_URL, LAB_TOKEN, NOTEBOOK, CHROMIUM, ARTIFACTS } = process.env;
const LONG = 240_000; // a Docker run start, a kernel start: generous bounds, never assertions on speed
const step = message => console.log(`[ui] ${message}`);

mkdirSync(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // root in a container: no sandbox; small /dev/shm: use /tmp
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu']
});
const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
const consoleErrors = [];
page.on('console', message => {
  if (message.type() === 'error') {
    consoleErrors.push(message.text());
  }
});
page.setDefaultTimeout(LONG);

async function shot(name, target = page) {
  const path = join(ARTIFACTS, `${name}.png`);
  await target.screenshot({ path });
  step(`screenshot ${path}`);
}

try {
  step('open JupyterLab with the notebook');
  await page.goto(`${LAB_URL}lab/tree/${NOTEBOOK}?token=${LAB_TOKEN}`);
  await page.waitForFunction(() => window.jupyterapp && window.jupyterapp.shell);

  step('open the sidebar panel');
  const tab = page.locator('.jp-SideBar .lm-TabBar-tab[data-id="jupyter-amltrain-panel"]');
  await tab.click();
  const panel = page.locator('#jupyter-amltrain-panel');
  await panel.locator('.jp-AmlTrain-header').getByText(/workspace ws-ui/).waitFor();
  await panel.locator('[data-section="computes"] [data-compute="local"]').waitFor();

  step('run the notebook: it submits the runs');
  await page.locator('.jp-Notebook .jp-Cell').first().waitFor();
  await page.waitForFunction(() => {
    const kernel = window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel;
    return kernel?.status === 'idle';
  });
  await page.evaluate(() => window.jupyterapp.commands.execute('notebook:run-all-cells'));

  const demoRow = panel.locator('li.jp-AmlTrain-run[data-experiment="ui-demo"]');
  await demoRow.waitFor();
  const demoId = await demoRow.getAttribute('data-run-id');
  step(`panel lists ${demoId}`);
  await panel.locator('li.jp-AmlTrain-run[data-experiment="ui-demo"][data-status="Completed"]').waitFor();
  step('panel shows it Completed');
  await panel
    .locator('[data-section="environments"] [data-environment="ui-base"][data-state="built"]')
    .waitFor();
  await shot('panel-completed', panel);

  step('open its run view: log lines and the metric chart');
  await demoRow.click();
  const demoView = page.locator(`.jp-AmlTrain-runView[data-run-id="${demoId}"]`);
  await demoView.waitFor();
  const demoLog = demoView.locator('pre.jp-AmlTrain-log');
  for (const line of ['ui-test line 1', 'ui-test line 5', 'ui-test done']) {
    await demoLog.getByText(line).waitFor();
  }
  await demoView.locator('figure.jp-AmlTrain-chart[data-metric="loss"] polyline').waitFor();
  await demoView.locator('[data-action="cancel"][disabled]').waitFor(); // nothing to cancel any more
  await shot('run-completed');

  step('the second run holds the node; open it and cancel it');
  const longRow = panel.locator('li.jp-AmlTrain-run[data-experiment="ui-cancel"][data-status="Running"]');
  await longRow.waitFor();
  const longId = await longRow.getAttribute('data-run-id');
  await panel.locator(`[data-compute="cpu-cluster"] [data-node="0"] a[data-run-id="${longId}"]`).waitFor();
  await longRow.click();
  const longView = page.locator(`.jp-AmlTrain-runView[data-run-id="${longId}"]`);
  await longView.locator('pre.jp-AmlTrain-log').getByText('tick 2').waitFor(); // the log is live
  await shot('run-running');
  await longView.locator('button[data-action="cancel"]').click();
  await page.locator('.jp-Dialog button.jp-mod-warn').click();
  await page.locator(`.jp-AmlTrain-runView[data-run-id="${longId}"][data-status="Canceled"]`).waitFor();
  await panel.locator(`li.jp-AmlTrain-run[data-run-id="${longId}"][data-status="Canceled"]`).waitFor();
  step('panel shows it Canceled');
  await shot('panel-canceled', panel);
  await shot('lab-canceled');

  step('hidden panel: no polling; shown again: polling resumes');
  const panelRequests = [];
  page.on('request', request => {
    if (/\/jupyter-amltrain\/api\/(gpus|computes)/.test(request.url())) {
      panelRequests.push(request.url());
    }
  });
  await tab.click(); // collapses the sidebar
  await panel.waitFor({ state: 'hidden' });
  const hiddenFrom = panelRequests.length;
  await page.waitForTimeout(3 * 2000); // three polling intervals
  const whileHidden = panelRequests.length - hiddenFrom;
  await tab.click();
  await page.waitForRequest(/\/jupyter-amltrain\/api\/gpus/);

  console.log(JSON.stringify({ completed: demoId, canceled: longId, whileHidden, consoleErrors }));
} catch (error) {
  await shot('failure').catch(() => undefined);
  writeFileSync(join(ARTIFACTS, 'failure.html'), await page.content().catch(() => ''));
  console.error(`[ui] FAILED: ${error.stack || error}`);
  console.error(`[ui] browser console errors: ${JSON.stringify(consoleErrors)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
