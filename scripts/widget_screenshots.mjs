// Manual check that the widget views render in a real JupyterLab (not part of the test suite):
// opens the quickstart notebook, runs every cell, waits for the runs to finish and screenshots each view.
// Driven by scripts/widget-screenshots.sh, which starts JupyterLab and installs playwright-core.
import { createRequire } from "node:module";

const [lab, out] = process.argv.slice(2);
const require = createRequire(`${process.env.PLAYWRIGHT_DIR}/`);
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const errors = [];
page.on("console", (msg) => { if (msg.type() === "error") errors.push(msg.text()); });
page.on("pageerror", (err) => errors.push(String(err)));

await page.goto(`${lab}/lab/tree/quickstart.ipynb`);
await page.waitForSelector(".jp-Notebook", { timeout: 120000 });
// JupyterLab asks which kernel to start for a notebook it opens the first time: accept the notebook's own.
const accept = await page.waitForSelector(".jp-Dialog .jp-mod-accept", { timeout: 30000 }).catch(() => null);
if (accept) await accept.click();
await page.waitForSelector("text=Python 3 (AMLTrain) | Idle", { timeout: 120000 });
await page.click("text=Run", { timeout: 30000 });
await page.click("text=Run All Cells");
await page.waitForSelector(".aml-details .aml-badge.aml-run", { timeout: 600000 });
await page.waitForSelector(".aml-details .aml-log:has-text('epoch')", { timeout: 600000 });
await page.locator(".aml-details").first().screenshot({ path: `${out}/run-details-running.png` });
// The second submit uses --wait, so the history cell runs after both runs ended.
try {
  await page.waitForSelector(".aml-history .aml-compare-chart svg", { timeout: Number(process.env.WAIT_MS || 600000) });
} catch (error) {
  await page.screenshot({ path: `${out}/failure.png`, fullPage: true });
  console.log(JSON.stringify({ failure: String(error), errors }));
  await browser.close();
  process.exit(1);
}
await page.waitForTimeout(3000);

async function shoot(selector, name, index = 0) {
  const element = page.locator(selector).nth(index);
  await element.scrollIntoViewIfNeeded();
  await element.screenshot({ path: `${out}/${name}.png` });
  console.log(`${out}/${name}.png`);
}
await shoot(".aml-details", "run-details-live", 0);
await shoot(".aml-details", "run-details-wait", 1);
await shoot(".aml-history", "run-history", 1);
const row = page.locator(".aml-history").nth(1).locator("tbody tr").first();
await row.click();
await page.waitForTimeout(2000);
await shoot(".jp-OutputArea-output:has(.aml-history)", "run-history-opened", 1);
await shoot(".aml-gpus", "gpu-monitor", 0);
const badges = await page.locator(".aml-details .aml-badge").allTextContents();
console.log(JSON.stringify({ badges, errors }));
await browser.close();
