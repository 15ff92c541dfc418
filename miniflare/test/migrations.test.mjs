import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { statements } from "../migrations.mjs";

test("splits statements and drops comments", () => {
  const sql = "-- header\nCREATE TABLE a (x INTEGER -- why\n);\n\nCREATE INDEX i ON a (x);\n";
  assert.deepEqual(statements(sql), ["CREATE TABLE a (x INTEGER \n)", "CREATE INDEX i ON a (x)"]);
});

test("keeps a trigger body whole", () => {
  const sql = "CREATE TABLE t (x);\nCREATE TRIGGER g AFTER INSERT ON t\nBEGIN\n  UPDATE t SET x = 1;\n  UPDATE t SET x = 2;\nEND;\nCREATE INDEX i ON t (x);\n";
  const stmts = statements(sql);
  assert.equal(stmts.length, 3);
  assert.match(stmts[1], /^CREATE TRIGGER g[\s\S]*x = 1;\n\s*UPDATE t SET x = 2;\nEND$/);
  assert.equal(stmts[2], "CREATE INDEX i ON t (x)");
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
