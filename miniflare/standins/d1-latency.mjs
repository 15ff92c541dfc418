// `--d1-latency-ms N`: the D1 binding as a session object far from its
// database sees it. Every call that reaches D1 (a statement's run, all,
// first or raw, a batch, an exec) waits N ms first, as a round trip to a
// primary in another region would. Preparing and binding are local and do
// not wait. Everything else reaches the real local D1 database.
//
// The class is named D1Database because the worker crate checks a binding's
// constructor name.
export const D1_LATENCY_SCRIPT = `
const pause = (ms) => new Promise((r) => setTimeout(r, ms));
class D1PreparedStatement {
  constructor(inner, ms) { this.inner = inner; this.ms = ms; }
  bind(...values) { return new D1PreparedStatement(this.inner.bind(...values), this.ms); }
  async first(...a) { await pause(this.ms); return this.inner.first(...a); }
  async run(...a) { await pause(this.ms); return this.inner.run(...a); }
  async all(...a) { await pause(this.ms); return this.inner.all(...a); }
  async raw(...a) { await pause(this.ms); return this.inner.raw(...a); }
}
class D1Database {
  constructor(env) { this.inner = env.INNER; this.ms = Number(env.LATENCY_MS); }
  prepare(sql) { return new D1PreparedStatement(this.inner.prepare(sql), this.ms); }
  async batch(statements) {
    await pause(this.ms);
    return this.inner.batch(statements.map((s) => s.inner));
  }
  async exec(sql) { await pause(this.ms); return this.inner.exec(sql); }
  async dump() { await pause(this.ms); return this.inner.dump(); }
}
export default function (env) {
  return new D1Database(env);
}
`;
