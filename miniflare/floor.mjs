// The runtime's floor for a durable ack (BENCHMARKS.md): a minimal JS
// Durable Object (SQLite storage, hibernation API) that stores each message
// and sends an ack to the sender plus the message to every socket, as
// Confab does, driven at RATE msg/s for SECS s by one sender with one
// receiver. Prints workerd CPU per message (user + system, /proc).
//   node miniflare/floor.mjs [sql|none] [RATE=200] [SECS=10]
// "none" skips the insert. Not part of `make test`: a measurement tool.
import { Miniflare } from "miniflare";
import fs from "node:fs";
import { execSync } from "node:child_process";
const MODE = process.argv[2] ?? "sql";
const RATE = Number(process.argv[3] ?? 200), SECS = Number(process.argv[4] ?? 10);
const script = `
export class Room {
  constructor(state) { this.state = state; this.sql = state.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS m (seq INTEGER PRIMARY KEY, cid TEXT UNIQUE, body TEXT, at INTEGER)"); this.seq = 0; }
  async fetch(req) { const p = new WebSocketPair(); this.state.acceptWebSocket(p[1]); return new Response(null, { status: 101, webSocket: p[0] }); }
  webSocketMessage(ws, data) {
    const f = JSON.parse(data); const seq = ++this.seq; const at = Date.now();
    if (${JSON.stringify(MODE)} === "sql") this.sql.exec("INSERT INTO m (seq, cid, body, at) VALUES (?, ?, ?, ?)", seq, f.client_id, f.text, at);
    ws.send(JSON.stringify({ type: "ack", client_id: f.client_id, seq }));
    const out = JSON.stringify({ type: "message", seq, client_id: f.client_id, text: f.text, created_at: at });
    for (const s of this.state.getWebSockets()) s.send(out);
  }
}
export default { fetch(req, env) { return env.ROOM.get(env.ROOM.idFromName("r")).fetch(req); } };`;
const mf = new Miniflare({ port: 0, modules: true, script, durableObjects: { ROOM: { className: "Room", useSQLite: true } } });
const url = (await mf.ready).toString().replace("http", "ws");
const pid = execSync("pgrep -n workerd").toString().trim();
const cpu = () => { const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(")")[1].trim().split(/\s+/); return (Number(f[11]) + Number(f[12])) * 10; };
// Node 22's own WebSocket client.
const open = () => new Promise((r) => { const w = new WebSocket(url); w.addEventListener("open", () => r(w)); });
const sender = await open(), receiver = await open();
let got = 0; receiver.addEventListener("message", () => got++);
await new Promise((r) => setTimeout(r, 1000));
const n = RATE * SECS, before = cpu(), t0 = Date.now();
for (let i = 0; i < n; i++) {
  const due = t0 + (i * 1000) / RATE; const wait = due - Date.now(); if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  sender.send(JSON.stringify({ type: "send", client_id: "c" + i, text: "message " + i }));
}
while (got < n) await new Promise((r) => setTimeout(r, 50));
await new Promise((r) => setTimeout(r, 1000));
console.log(`${MODE} ${RATE} msg/s: ${(((cpu() - before) * 1000) / n).toFixed(0)} µs of workerd CPU per message (${n} messages)`);
sender.close(); receiver.close(); await mf.dispose();
