// The ESM and CommonJS entry points load, export the same API, and match the TypeScript declarations.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import * as esm from "dc1-renter-sdk";
import { declaredValues } from "./support/declarations.mjs";

const require = createRequire(import.meta.url);
const cjs = require("dc1-renter-sdk");
const root = fileURLToPath(new URL("..", import.meta.url));

test("import and require load the package with the names the declarations export", () => {
  const declared = declaredValues().sort();
  assert.deepEqual(Object.keys(esm).sort(), declared);
  assert.deepEqual(Object.keys(cjs).sort(), declared);
});

test("the CommonJS build works on its own: a client, the error tree, the SAR helper", () => {
  const client = new cjs.DC1RenterClient({ apiKey: "dc1-renter-x", baseUrl: "http://127.0.0.1:9" });
  assert.equal(typeof client.waitForJob, "function");
  const limited = new cjs.RateLimitError("slow down", { status: 429, retryAfter: 2 });
  assert.ok(limited instanceof cjs.DC1Error && limited instanceof Error);
  assert.equal(limited.name, "RateLimitError");
  assert.equal(limited.retryAfter, 2);
  assert.equal(cjs.sar(12345), "123.45");
  assert.equal(cjs.DEFAULT_BASE_URL, esm.DEFAULT_BASE_URL);
});

test("the source uses nothing Node-only, so browsers load it as it is", () => {
  const nodeOnly = /\b(process\.|Buffer\b|require\(|__dirname)|from "node:/;
  for (const file of readdirSync(`${root}src`).filter((name) => name.endsWith(".js"))) {
    const found = readFileSync(`${root}src/${file}`, "utf8").match(nodeOnly);
    assert.equal(found, null, `src/${file} uses ${found?.[0]}`);
  }
});

test("sar() is exact and refuses what is not whole halala", () => {
  assert.deepEqual([0, 5, 100, 12345, -250].map(esm.sar), ["0.00", "0.05", "1.00", "123.45", "-2.50"]);
  assert.throws(() => esm.sar(1.5), TypeError);
});

test("the declarations type-check a seed-style usage file (tsc --noEmit, strict)", () => {
  const tsc = `${root}node_modules/typescript/bin/tsc`;
  assert.ok(existsSync(tsc), "typescript is not installed: run npm ci --prefix sdk/js");
  const run = spawnSync(process.execPath, [tsc, "-p", "test/types"], { cwd: root, encoding: "utf8" });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});
