// Opens the gRPC-Web test page (grpcweb_page.mjs, bundled) in Debian's headless Chromium with
// playwright-core and prints what the page saw.
//
// Usage: node grpcweb_browser.mjs <page-url>
// Prints one JSON line: the page's window.__result plus the requests the page made and any
// console or page errors. Exits non-zero only when the page could not be driven at all.
import { chromium } from 'playwright-core';

const [url] = process.argv.slice(2);
if (!url) {
  console.error('usage: node grpcweb_browser.mjs <page-url>');
  process.exit(2);
}

const WAIT_MS = 20000; // the page's calls; the whole script stays well under the test's budget

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // Loopback only: no proxy, and none of Chromium's own background traffic.
  args: ['--no-proxy-server', '--disable-background-networking', '--disable-component-update'],
});
const out = { consoleErrors: [], pageErrors: [], requests: [] };
try {
  const page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && out.consoleErrors.push(m.text()));
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  page.on('request', (r) => out.requests.push(`${r.method()} ${r.url()}`));
  const resp = await page.goto(url);
  out.pageStatus = resp.status();
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: WAIT_MS });
  out.result = await page.evaluate(() => window.__result);
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
