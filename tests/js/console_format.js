// Unit test of the console's number formats (src/console/assets/format.js),
// run in node by tests/integration/test_console_format.py. The file is
// evaluated as the browser does (plain script, global functions).
"use strict";
const assert = require("assert");
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const source = fs.readFileSync(path.join(__dirname, "../../src/console/assets/format.js"), "utf8");
const ctx = {};
vm.runInNewContext(source, ctx);

const cases = [
  // [function, input, expected]
  ["fmtRate", 123.456789, "123 B/s"],
  ["fmtRate", 0.4, "0 B/s"],
  ["fmtRate", 1023.6, "1.0 KiB/s"],
  ["fmtRate", 12.3 * 1024 * 1024 + 17.25, "12.3 MiB/s"],
  ["fmtRate", 5 * 1024 * 1024 * 1024 / 3, "1.7 GiB/s"],
  ["fmtRate", null, "–"],
  ["fmtBytes", 512, "512 B"],
  ["fmtBytes", 1536, "1.5 KiB"],
  ["fmtBytes", 0, "0 B"],
];
for (const [fn, input, expected] of cases) {
  assert.strictEqual(ctx[fn](input), expected, `${fn}(${input})`);
}
console.log(`console formats: ${cases.length} cases pass`);
