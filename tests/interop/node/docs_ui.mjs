// Drives Swagger UI at <base>/docs in Debian's headless Chromium (playwright-core, pinned to
// the release built for the same Chromium major): waits for the ItemService operations,
// opens GetItem, "Try it out", fills the id, "Execute", and reads the live response's status
// and body from the page. Saves a full-page screenshot.
//
// Usage: node docs_ui.mjs <base-url> <item-id> <screenshot.png>
// Prints one JSON line {operations, status, body, consoleErrors, pageErrors, cspViolations};
// the pytest file asserts on it. Exits non-zero only when the page could not be driven at all.
import { chromium } from 'playwright-core';

const [base, itemId, shot] = process.argv.slice(2);
if (!base || !itemId || !shot) {
  console.error('usage: node docs_ui.mjs <base-url> <item-id> <screenshot.png>');
  process.exit(2);
}

const STEP_MS = 15000; // one UI step; the whole script stays well under the test's budget

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // Loopback only: no proxy, and none of Chromium's own background traffic.
  args: ['--no-proxy-server', '--disable-background-networking', '--disable-component-update'],
});
const result = { consoleErrors: [], pageErrors: [], cspViolations: [], requests: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // A CSP violation is reported as a console error; it means our policy broke the page.
    (m.text().includes('Content Security Policy') ? result.cspViolations : result.consoleErrors)
      .push(m.text());
  });
  page.on('pageerror', (e) => result.pageErrors.push(String(e)));
  // Every request the page makes must go to our server: Swagger UI's defaults include a
  // third-party validator badge, which our page turns off.
  page.on('request', (r) => result.requests.push(r.url()));

  const resp = await page.goto(`${base}/docs`);
  result.pageStatus = resp.status();
  await page.locator('.opblock-tag-section').first().waitFor();
  await page.locator('.opblock').first().waitFor();
  result.title = await page.locator('.info .title').first().innerText();
  result.operations = await page.locator('.opblock-summary').evaluateAll((els) =>
    els.map((e) => {
      const m = e.querySelector('.opblock-summary-method');
      const p = e.querySelector('.opblock-summary-path');
      return `${m ? m.textContent.trim() : '?'} ${p ? p.textContent.trim().replace(/\u200b/g, '') : '?'}`;
    }));

  // GetItem at GET /items/{id}: Swagger UI's id for it is operations-<tag>-<operationId>.
  const op = page.locator('#operations-ItemService-ItemService_GetItem');
  await op.locator('.opblock-summary').click();
  await op.getByRole('button', { name: 'Try it out' }).click();
  await op.locator('tr[data-param-name="id"] input').fill(String(itemId));
  await op.getByRole('button', { name: 'Execute' }).click();
  const live = op.locator('.live-responses-table .response .response-col_status').first();
  await live.waitFor();
  result.status = (await live.innerText()).trim();
  result.body = (await op.locator('.live-responses-table .response-col_description pre')
    .first().innerText()).trim();
  result.requestUrl = (await op.locator('.request-url pre').first().innerText()).trim();
  await page.screenshot({ path: shot, fullPage: true });
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
