// Drives the web console in Debian's headless Chromium (playwright-core,
// no downloaded browser) for tests/integration/test_console_ui.py.
// Usage: node console_ui.js ADMIN_URL SCREENSHOT_DIR TOPIC GROUP MARKUP_TOPIC
// (MARKUP_TOPIC holds a record whose key, value and header are HTML.)
// Checks what a person would look at, saves a screenshot of each page, and
// prints one JSON line with what it read, for the Python side to check
// against the broker.
"use strict";
const { chromium } = require("playwright-core");
const fs = require("fs");
const path = require("path");

const STEP_TIMEOUT_MS = 20000;
const [adminUrl, shotDir, topic, group, markupTopic] = process.argv.slice(2);

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
}

async function main() {
  fs.mkdirSync(shotDir, { recursive: true });
  // playwright-core gives the browser a fresh temporary profile and
  // --headless; nothing is downloaded (executablePath is Debian's chromium).
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const out = {};
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", e => errors.push(String(e)));
    page.on("dialog", d => d.accept());
    const shot = name => page.screenshot({ path: path.join(shotDir, name + ".png"), fullPage: true });

    // Overview
    await page.goto(adminUrl + "/ui/#/overview");
    await page.waitForSelector("#ov-shards tr:nth-child(2)");
    await page.waitForTimeout(2500); // two samples: the charts have lines
    await shot("overview");

    // Topic list: the client-created topic with its message count
    await page.goto(adminUrl + "/ui/#/topics");
    const row = page.locator(`#topics-table tr[data-topic="${topic}"]`);
    await row.waitFor();
    out.topic_messages = Number(await row.locator('[data-col="messages"]').innerText());
    await shot("topics");

    // Message browser: key, value, header; then the JSON view
    await row.locator("a").click();
    await page.waitForSelector("#messages-table tr.message");
    const first = page.locator("#messages-table tr.message").first();
    out.key = await first.locator("td.key").innerText();
    out.value = await first.locator("td.value").innerText();
    out.headers = await first.locator("td.headers").innerText();
    await shot("messages");
    await page.selectOption("#decode", "json");
    await page.waitForFunction(() => {
      const v = document.querySelector("#messages-table tr.message td.value");
      return v && v.innerText.includes("\n");
    });
    out.value_json = await page.locator("#messages-table tr.message td.value").first().innerText();
    await shot("messages-json");

    // A record holding HTML is shown as text: no element made of it, no script run
    await page.goto(`${adminUrl}/ui/#/topics/${encodeURIComponent(markupTopic)}/messages`);
    await page.waitForSelector("#messages-table tr.message");
    const markup = page.locator("#messages-table tr.message").first();
    out.markup_key = await markup.locator("td.key").innerText();
    out.markup_value = await markup.locator("td.value").innerText();
    out.markup_headers = await markup.locator("td.headers").innerText();
    out.markup_elements = await page.locator("#messages-table script, #messages-table img, #messages-table b, #messages-table i").count();
    out.xss = await page.evaluate(() => window.__xss ?? null);
    await shot("messages-markup");

    // Configs page with Kafka's documentation
    await page.goto(`${adminUrl}/ui/#/topics/${encodeURIComponent(topic)}/configs`);
    await page.waitForSelector('#configs-table tr[data-config="retention.ms"] .doc');
    out.retention_doc = await page.locator('#configs-table tr[data-config="retention.ms"] .doc').innerText();
    await shot("configs");

    // Group page: lag and status of the stopped consumer
    await page.goto(adminUrl + "/ui/#/groups");
    await page.waitForSelector(`#groups-table tr[data-group="${group}"]`);
    await shot("groups");
    await page.locator(`#groups-table tr[data-group="${group}"] a`).click();
    const lagRow = page.locator("#lag-table tr[data-partition]").first();
    await lagRow.waitFor();
    out.lag = Number(await lagRow.locator("td.lag").innerText());
    out.committed_before = Number(await lagRow.locator("td.committed").innerText());
    out.status = (await lagRow.locator("td.status").innerText()).trim();
    out.group_status = (await page.locator("#group-status").innerText()).trim();
    await page.waitForTimeout(3500); // a second poll: the chart has points
    await shot("group");

    // Reset: dry run, then execute, to the latest offset
    await page.selectOption("#reset-to", "latest");
    check(await page.locator("#reset-execute").isDisabled(), "execute is off before a dry run");
    await page.click("#reset-dry-run");
    await page.waitForSelector("#reset-plan .new-offset");
    out.dry_run_text = await page.locator("#reset-result").innerText();
    out.planned_offset = Number(await page.locator("#reset-plan .new-offset").first().innerText());
    await shot("reset-dry-run");
    await page.click("#reset-execute");
    await page.waitForFunction(() => (document.querySelector("#reset-result") || {}).innerText?.startsWith("executed"));
    await page.waitForFunction(want => {
      const c = document.querySelector("#lag-table td.committed");
      return c && Number(c.innerText) === want;
    }, out.planned_offset);
    out.committed_after = Number(await page.locator("#lag-table td.committed").first().innerText());
    await shot("reset-executed");
  } finally {
    await browser.close();
  }
  out.page_errors = errors;
  console.log(JSON.stringify(out));
}

main().catch(e => { console.error(e.stack || String(e)); process.exit(1); });
