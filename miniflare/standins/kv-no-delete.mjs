// Test-only (`--kv-no-delete`): the KV binding with `delete` turned into a
// no-op. Everything else reaches the real local KV namespace. A test uses it
// to show that a guarantee does not lean on KV deleting at once (Cloudflare
// KV is eventually consistent): with it, a used ticket stays readable in KV,
// and only the session object's own spent-ticket record refuses a replay.
export const KV_NO_DELETE_SCRIPT = `
class KvNoDelete {
  constructor(env) {
    this.inner = env.INNER;
  }
  get(...args) { return this.inner.get(...args); }
  getWithMetadata(...args) { return this.inner.getWithMetadata(...args); }
  put(...args) { return this.inner.put(...args); }
  list(...args) { return this.inner.list(...args); }
  async delete() {}
}
export default function (env) {
  return new KvNoDelete(env);
}
`;
