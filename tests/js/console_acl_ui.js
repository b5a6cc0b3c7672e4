// The console's topic list in Debian's headless Chromium (playwright-core)
// when the broker's ACL authorizer limits the console's principal, for
// tests/integration/test_console_acl.py.
// Usage: node console_acl_ui.js ADMIN_URL SCREENSHOT_DIR VISIBLE_TOPIC
// Waits for VISIBLE_TOPIC's row, saves a screenshot and prints one JSON
// line: every topic row the page shows, and any page errors.
"use strict";
const { chromium } = require("playwright-core");
const fs = require("fs");
const path = require("path");

const STEP_TIMEOUT_MS = 20000;
const [adminUrl, shotDir, visibleTopic] = process.argv.slice(2);

async function main() {
  fs.mkdirSync(shotDir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const out = { page_errors: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", e => out.page_errors.push(String(e)));
    await page.goto(adminUrl + "/ui/#/topics");
    // "internal" shown too: nothing the principal may see is left out by the page itself
    await page.check("#show-internal");
    await page.locator(`#topics-table tr[data-topic="${visibleTopic}"]`).waitFor();
    out.topics = await page.locator("#topics-table tr[data-topic]").evaluateAll(
      rows => rows.map(r => r.dataset.topic));
    await page.screenshot({ path: path.join(shotDir, "topics-acl.png"), fullPage: true });
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}

main().catch(e => { console.error(e.stack || String(e)); process.exit(1); });
