// The JS client library's reconnect, resume and outbox logic, in Node with
// a scripted socket and API (the browser test covers it against the real
// worker; this pins down the edge cases one by one).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfabClient, backoffMs, TERMINAL_CLOSE_CODES, RETRYABLE_CODES } from "../../public/confab.js";

class MemoryStorage {
  constructor() { this.m = new Map(); }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
}

/** A WebSocket whose server side the test plays. */
function fakeSockets() {
  const opened = [];
  class FakeWS {
    constructor(url) {
      this.url = url;
      this.sent = [];
      opened.push(this);
    }
    send(data) { this.sent.push(JSON.parse(data)); }
    close(code = 1000) { this.onclose?.({ code }); }
    serverSends(frame) { this.onmessage?.({ data: JSON.stringify(frame) }); }
    serverCloses(code) { this.onclose?.({ code }); }
  }
  return { FakeWS, opened };
}

function client({ FakeWS, ticketStatus = () => 201, storage = new MemoryStorage() }) {
  let n = 0;
  const fetch = async (url) => {
    const status = ticketStatus();
    const body = status === 201 ? { ticket: "t" + ++n, expires_in: 30 } : { error: { code: "not_found" } };
    return { status, ok: status < 300, json: async () => body };
  };
  return new ConfabClient({ baseUrl: "http://confab.test", getToken: () => "tok", storage, WebSocket: FakeWS, fetch });
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

test("backoff grows exponentially, is capped, and is jittered", () => {
  for (let attempt = 0; attempt < 12; attempt++) {
    const ceiling = Math.min(15000, 500 * 2 ** attempt);
    assert.equal(backoffMs(attempt, { random: () => 0.999999 }), Math.floor(0.999999 * ceiling));
    assert.equal(backoffMs(attempt, { random: () => 0 }), 0);
  }
  const draws = new Set(Array.from({ length: 50 }, () => backoffMs(6)));
  assert.ok(draws.size > 10, "full jitter spreads reconnects");
});

test("reconnects after a drop and resumes from the last seen seq", async () => {
  const { FakeWS, opened } = fakeSockets();
  const chat = client({ FakeWS }).session("s1", { backoff: { baseMs: 1, capMs: 2 } });
  chat.connect();
  await tick(5);
  assert.match(opened[0].url, /^ws:\/\/confab\.test\/v1\/sessions\/s1\/ws\?ticket=t1&after=0&changes=0&batch=1$/);
  opened[0].serverSends({ type: "hello", you: {}, present: [], reads: [] });
  opened[0].serverSends({ type: "synced", last_seq: 0 });
  opened[0].serverSends({ type: "message", seq: 7, id: "m7", author: { id: "u" }, text: "x" });
  opened[0].serverCloses(1006);
  assert.equal(chat.state, "reconnecting");
  await tick(20);
  assert.equal(opened.length, 2);
  assert.match(opened[1].url, /ticket=t2&after=7&changes=0&batch=1$/, "a fresh ticket, resuming after seq 7");
});

test("a batch frame reaches listeners as its messages, one by one, and moves the resume point", async () => {
  const { FakeWS, opened } = fakeSockets();
  const chat = client({ FakeWS }).session("s1", { backoff: { baseMs: 1, capMs: 2 } });
  const seen = [];
  chat.addEventListener("message", (e) => seen.push(e.detail.seq));
  chat.connect();
  await tick(5);
  opened[0].serverSends({ type: "hello", you: {}, present: [], reads: [] });
  opened[0].serverSends({ type: "synced", last_seq: 0 });
  const m = (seq) => ({ type: "message", seq, id: "m" + seq, author: { id: "u" }, text: "x" + seq });
  opened[0].serverSends({ type: "batch", frames: [m(1), m(2), m(3)] });
  // Already seen: a repeated message in a later batch is dropped.
  opened[0].serverSends({ type: "batch", frames: [m(3), m(4)] });
  assert.deepEqual(seen, [1, 2, 3, 4]);
  opened[0].serverCloses(1006);
  await tick(20);
  assert.match(opened[1].url, /after=4&changes=0&batch=1$/);
});

test("token_expired renews at once with a fresh ticket, resumes, and never shows a gap", async () => {
  const { FakeWS, opened } = fakeSockets();
  // A long backoff: a renewal that went through the retry path would stall.
  const chat = client({ FakeWS }).session("s1", { backoff: { baseMs: 60000, capMs: 60000 } });
  const states = [];
  let renewals = 0;
  chat.addEventListener("status", (e) => states.push(e.detail.state));
  chat.addEventListener("renew", () => renewals++);
  chat.connect();
  await tick(5);
  opened[0].serverSends({ type: "hello", you: {}, present: [], reads: [] });
  opened[0].serverSends({ type: "synced", last_seq: 3 });
  chat.send("queued during the renewal");
  // The error frame starts the renewal; the close that follows changes nothing.
  opened[0].serverSends({ type: "error", code: "token_expired", message: "x" });
  opened[0].serverCloses(4001);
  await tick(5);
  assert.equal(renewals, 1);
  assert.equal(opened.length, 2);
  assert.match(opened[1].url, /ticket=t2&after=3&changes=0&batch=1$/);
  opened[1].serverSends({ type: "hello", you: {}, present: [], reads: [] });
  opened[1].serverSends({ type: "synced", last_seq: 3 });
  assert.deepEqual(opened[1].sent.map((f) => f.text), ["queued during the renewal"], "the outbox goes again");
  assert.deepEqual(states.filter((st, i) => st !== states[i - 1]), ["connecting", "online"]);
  // A close with 4001 alone (no frame first) renews the same way.
  opened[1].serverCloses(4001);
  await tick(5);
  assert.equal(opened.length, 3);
  assert.equal(renewals, 2);
});

test("terminal close codes stop retrying", async () => {
  assert.ok(TERMINAL_CLOSE_CODES.has(4004) && TERMINAL_CLOSE_CODES.has(1008) && TERMINAL_CLOSE_CODES.has(4003));
  const { FakeWS, opened } = fakeSockets();
  const chat = client({ FakeWS }).session("s1", { backoff: { baseMs: 1, capMs: 1 } });
  const closed = [];
  chat.addEventListener("closed", (e) => closed.push(e.detail));
  chat.connect();
  await tick(5);
  opened[0].serverCloses(4004);
  await tick(20);
  assert.equal(opened.length, 1, "no reconnect after the session was deleted");
  assert.deepEqual(closed, [{ code: 4004, reason: undefined, terminal: true }]);
  assert.equal(chat.state, "closed");
});

test("a refused ticket (401/404) is terminal; a 503 is retried", async () => {
  for (const [status, retried] of [[401, false], [404, false], [503, true]]) {
    const { FakeWS, opened } = fakeSockets();
    let calls = 0;
    const chat = client({ FakeWS, ticketStatus: () => (++calls === 1 ? status : 201) })
      .session("s1", { backoff: { baseMs: 1, capMs: 1 } });
    chat.connect();
    await tick(20);
    assert.equal(opened.length, retried ? 1 : 0, `status ${status}`);
    assert.equal(chat.state, retried ? "reconnecting" : "closed", `status ${status}`);
  }
});

test("the outbox keeps sends across offline and reloads, resends them once, and empties on ack", async () => {
  const storage = new MemoryStorage();
  const { FakeWS, opened } = fakeSockets();
  const first = client({ FakeWS, storage }).session("s1");
  // Not connected: both sends wait, persisted.
  const a = first.send("one");
  const b = first.send("two");
  assert.equal(first.queued, 2);
  assert.equal(JSON.parse(storage.getItem("confab.outbox.s1")).length, 2);

  // A reload: a new session object finds them and sends them after synced,
  // in order, with their original client ids.
  const second = client({ FakeWS, storage }).session("s1");
  second.connect();
  await tick(5);
  const ws = opened.at(-1);
  ws.serverSends({ type: "hello", you: {}, present: [], reads: [] });
  assert.deepEqual(ws.sent, [], "nothing before synced");
  ws.serverSends({ type: "synced", last_seq: 0 });
  assert.deepEqual(ws.sent.map((f) => [f.type, f.client_id, f.text]), [["send", a, "one"], ["send", b, "two"]]);
  ws.serverSends({ type: "ack", client_id: a, seq: 1, duplicate: false });
  assert.equal(second.queued, 1);
  // The echo of the other one (e.g. acked before a drop) also clears it.
  ws.serverSends({ type: "message", seq: 2, id: "m2", client_id: b, author: { id: "u" }, text: "two" });
  assert.equal(second.queued, 0);
  assert.equal(storage.getItem("confab.outbox.s1"), null);
});

test("the change cursor moves once synced, so a socket lost mid-replay resumes its changes from where it was", async () => {
  const { FakeWS, opened } = fakeSockets();
  const chat = client({ FakeWS }).session("s1", { backoff: { baseMs: 1, capMs: 2 } });
  chat.connect();
  await tick(5);
  opened[0].serverSends({ type: "hello", last_change: 4 });
  opened[0].serverSends({ type: "synced", last_seq: 2, last_change: 4 });
  opened[0].serverSends({ type: "reaction", seq: 1, emoji: "x", user: { id: "u" }, action: "add", change: 5 });
  opened[0].serverCloses(1006);
  await tick(20);
  assert.match(opened[1].url, /after=2&changes=5&batch=1$/);
  // Change 9 arrives live during the replay, then the socket drops before
  // the replayed changes 6-8: the cursor must not skip them.
  opened[1].serverSends({ type: "hello", last_change: 8 });
  opened[1].serverSends({ type: "edited", seq: 1, text: "y", edited_at: 1, change: 9 });
  opened[1].serverCloses(1006);
  await tick(20);
  assert.match(opened[2].url, /after=2&changes=5&batch=1$/);
  opened[2].serverSends({ type: "hello", last_change: 9 });
  opened[2].serverSends({ type: "deleted", seq: 2, deleted_at: 1, change: 7 });
  opened[2].serverSends({ type: "synced", last_seq: 2, last_change: 9 });
  assert.equal(chat.lastChange, 9);
  opened[2].serverSends({ type: "edited", seq: 1, text: "z", edited_at: 2, change: 10 });
  assert.equal(chat.lastChange, 10, "live changes move it once online");
});

test("edits, deletions, reactions and votes wait in the outbox and leave it when applied or refused for good", async () => {
  const storage = new MemoryStorage();
  const { FakeWS, opened } = fakeSockets();
  const chat = client({ FakeWS, storage }).session("s1");
  // Offline: each is queued with a client id of its own, in order.
  const e = chat.edit(3, "fixed");
  const d = chat.delete(4);
  const r = chat.react(5, "👍");
  const gone = chat.react(6, "👍", "remove");
  const v = chat.vote(7, [1, 2]);
  assert.equal(new Set([e, d, r, gone, v]).size, 5);
  assert.equal(JSON.parse(storage.getItem("confab.outbox.s1")).length, 5);
  chat.connect();
  await tick(5);
  const ws = opened.at(-1);
  ws.serverSends({ type: "hello" });
  ws.serverSends({ type: "synced", last_seq: 6, last_change: 0 });
  assert.deepEqual(ws.sent.map((f) => [f.type, f.seq, f.client_id]), [
    ["edit", 3, e], ["delete", 4, d], ["react", 5, r], ["react", 6, gone], ["vote", 7, v],
  ]);
  assert.deepEqual(ws.sent.at(-1).choices, [1, 2]);
  // A poll closed meanwhile: refused for good.
  ws.serverSends({ type: "error", code: "poll_closed", message: "x", client_id: v });
  ws.serverSends({ type: "applied", client_id: e, change: 1, duplicate: false });
  ws.serverSends({ type: "applied", client_id: r, change: null, duplicate: true });
  // Not the author: resending cannot help, so it goes.
  ws.serverSends({ type: "error", code: "forbidden", message: "x", client_id: d });
  // Rate limited: it stays for the next connection.
  assert.ok(RETRYABLE_CODES.has("rate_limited"));
  ws.serverSends({ type: "error", code: "rate_limited", message: "x", client_id: gone, retry_after_ms: 5 });
  assert.deepEqual(JSON.parse(storage.getItem("confab.outbox.s1")).map((f) => f.client_id), [gone]);
  assert.equal(chat.queued, 1);
});

test("stop, escalate and desk actions are not queued: false and nothing sent while not online", async () => {
  const { FakeWS, opened } = fakeSockets();
  const chat = client({ FakeWS }).session("s1", { backoff: { baseMs: 1, capMs: 2 } });
  assert.equal(chat.claim(), false, "before connect");
  chat.connect();
  await tick(5);
  assert.equal(chat.transfer("u2"), false, "connecting");
  opened[0].serverSends({ type: "hello", you: {}, present: [], reads: [] });
  opened[0].serverSends({ type: "synced", last_seq: 0 });
  assert.equal(chat.state, "online");
  assert.equal(chat.escalate(), true);
  assert.equal(chat.transfer("u3"), true);
  opened[0].serverCloses(1006);
  assert.equal(chat.stop(), false, "reconnecting");
  await tick(20);
  opened[1].serverSends({ type: "hello", you: {}, present: [], reads: [] });
  opened[1].serverSends({ type: "synced", last_seq: 0 });
  const sent = opened.flatMap((ws) => ws.sent.map((f) => f.type));
  assert.deepEqual(sent.filter((t) => t !== "ping"), ["escalate", "transfer"], "nothing replayed after the reconnect");
  assert.equal(opened[0].sent.find((f) => f.type === "transfer").to, "u3");
});
