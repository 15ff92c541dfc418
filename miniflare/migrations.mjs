// Applies D1 migrations the way `wrangler d1 migrations apply` does: files in
// name order, each once, recorded in the same `d1_migrations` table, so local
// state stays compatible with wrangler's own tooling.
import fs from "node:fs";
import path from "node:path";

/**
 * Splits a migration into statements. A trigger's BEGIN ... END body stays
 * one statement. Migrations must not put `--` or `;` inside string literals;
 * ours do not, and the splitter stays this simple.
 */
export function statements(sql) {
  const parts = sql
    .split("\n")
    .map((line) => line.replace(/--.*$/, ""))
    .join("\n")
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter(Boolean);
  const out = [];
  let trigger = null;
  for (const part of parts) {
    if (trigger !== null) {
      trigger += `;\n${part}`;
      if (/\bEND$/i.test(part)) {
        out.push(trigger);
        trigger = null;
      }
    } else if (/^CREATE\s+TRIGGER\b/i.test(part) && !/\bEND$/i.test(part)) {
      trigger = part;
    } else {
      out.push(part);
    }
  }
  if (trigger !== null) throw new Error(`unterminated trigger: ${trigger.slice(0, 60)}`);
  return out;
}

export async function applyMigrations(db, dir) {
  await db
    .prepare(
      "CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )
    .run();
  const done = new Set((await db.prepare("SELECT name FROM d1_migrations").all()).results.map((r) => r.name));
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
  const applied = [];
  for (const file of files) {
    if (done.has(file)) continue;
    const stmts = statements(fs.readFileSync(path.join(dir, file), "utf8")).map((s) => db.prepare(s));
    stmts.push(db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(file));
    // A D1 batch is one transaction: a failing migration leaves nothing half-applied.
    await db.batch(stmts);
    applied.push(file);
  }
  return applied;
}
