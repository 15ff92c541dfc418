import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { statements } from "../migrations.mjs";

test("splits statements and drops comments", () => {
  const sql = "-- header\nCREATE TABLE a (x INTEGER -- why\n);\n\nCREATE INDEX i ON a (x);\n";
  assert.deepEqual(statements(sql), ["CREATE TABLE a (x INTEGER \n)", "CREATE INDEX i ON a (x)"]);
});

test("every shipped migration splits into non-empty statements", () => {
  const dir = new URL("../../migrations/", import.meta.url);
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".sql"));
  assert.ok(files.length > 0);
  for (const f of files) {
    const stmts = statements(fs.readFileSync(new URL(f, dir), "utf8"));
    assert.ok(stmts.length > 0, f);
    for (const s of stmts) assert.match(s, /^(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE)\b/i, `${f}: ${s}`);
  }
});
