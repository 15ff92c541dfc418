// `--d1-latency-ms N`: the D1 binding as a session object far from its
// database sees it. Every call that reaches D1 (a statement's run, all,
// first or raw, a batch, an exec) takes N ms more, as a round trip to a
// primary in another region would: half on the way there (before the
// query runs) and half on the way back (after it committed), so a caller
// can die after D1 has done its work but before it hears so. Preparing and
// binding are local and do not wait. Everything else reaches the real
// local D1 database.
//
// The class is named D1Database because the worker crate checks a binding's
// constructor name.
export const D1_LATENCY_SCRIPT = `
const pause = (ms) => new Promise((r) => setTimeout(r, ms));
// There and back: the call runs between the two halves of the trip.
async function trip(ms, call) {
  await pause(Math.floor(ms / 2));
  const result = await call();
  await pause(ms - Math.floor(ms / 2));
  return result;
}
class D1PreparedStatement {
  constructor(inner, ms) { this.inner = inner; this.ms = ms; }
  bind(...values) { return new D1PreparedStatement(this.inner.bind(...values), this.ms); }
  first(...a) { return trip(this.ms, () => this.inner.first(...a)); }
  run(...a) { return trip(this.ms, () => this.inner.run(...a)); }
  all(...a) { return trip(this.ms, () => this.inner.all(...a)); }
  raw(...a) { return trip(this.ms, () => this.inner.raw(...a)); }
}
class D1Database {
  constructor(env) { this.inner = env.INNER; this.ms = Number(env.LATENCY_MS); }
  prepare(sql) { return new D1PreparedStatement(this.inner.prepare(sql), this.ms); }
  batch(statements) {
    return trip(this.ms, () => this.inner.batch(statements.map((s) => s.inner)));
  }
  exec(sql) { return trip(this.ms, () => this.inner.exec(sql)); }
  dump() { return trip(this.ms, () => this.inner.dump()); }
}
export default function (env) {
  return new D1Database(env);
}
`;
