// The client package (clients/js, `@confab/client`): `npm pack` makes a
// versioned tarball holding the library the pages are built on, its store
// and its React hook, with types that compile; and the hook, rendered by
// React into jsdom, follows a real session on the real worker: the state,
// a message sent, the assistant's reply streaming in and stored.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { hs256, root, startHarness } from "../browser/support.mjs";

const pkgDir = path.join(root, "clients/js");
const out = path.join(root, "target/client-package");
const mfModules = path.join(root, "miniflare/node_modules");
let harness, tarball, installed;

before(async () => {
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const packed = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", out], { cwd: pkgDir }).toString());
  tarball = packed[0];
  // Installed as an app would have it: unpacked, beside a node_modules
  // that has React (the harness's), so `import "react"` resolves.
  installed = path.join(out, "app");
  fs.mkdirSync(installed);
  execFileSync("tar", ["-xzf", path.join(out, tarball.filename), "-C", installed]);
  fs.symlinkSync(mfModules, path.join(installed, "node_modules"));
  harness = await startHarness("package", {
    LLM_PROVIDERS: "openai",
    OPENAI_BASE_URL: "{llm_url}/v1",
    OPENAI_MODEL: "package-standin",
  });
});

after(() => harness?.stop());

test("npm pack makes a versioned tarball of the library the pages serve, its store, hook and types", () => {
  const meta = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  assert.equal(tarball.name, "@confab/client");
  assert.equal(tarball.version, meta.version);
  assert.equal(tarball.filename, `confab-client-${meta.version}.tgz`);
  assert.deepEqual(tarball.files.map((f) => f.path).sort(),
    ["README.md", "confab.d.ts", "confab.js", "package.json", "react.d.ts", "react.js", "store.d.ts", "store.js"]);
  // The same bytes as the file every deployment serves at /confab.js.
  for (const f of ["confab.js", "confab.d.ts"]) {
    assert.equal(fs.readFileSync(path.join(installed, "package", f), "utf8"),
      fs.readFileSync(path.join(root, "public", f), "utf8"), f);
  }
  // The types compile, and an app using them type-checks.
  const app = path.join(installed, "use.ts");
  fs.writeFileSync(app, `
import { ConfabClient } from "./package/confab.js";
import { sessionStore, type SessionSnapshot } from "./package/store.js";
import { useConfabSession } from "./package/react.js";
const client = new ConfabClient({ getToken: async () => "t" });
const store = sessionStore(client.session("s"));
const snap: SessionSnapshot = store.getSnapshot();
const texts: string[] = snap.messages.map((m) => m.text);
const streaming: string | undefined = snap.streaming?.text;
export function useChat() {
  const chat = useConfabSession(client, "s");
  const id: string = chat.send("hi");
  return { texts, streaming, id, state: chat.state, who: chat.desk?.assignee?.name };
}
`);
  execFileSync(process.execPath, [path.join(mfModules, "typescript/bin/tsc"), "--noEmit", "--strict", "--skipLibCheck", "false",
    "--module", "nodenext", "--target", "es2022", "--lib", "es2022,dom", app], { cwd: installed, stdio: "pipe" });
});

test("useConfabSession renders a live session with React in jsdom: state, a send, the streamed reply", async () => {
  const { JSDOM } = await import(path.join(mfModules, "jsdom/lib/api.js"));
  const dom = new JSDOM("<!doctype html><div id=root></div>", { url: harness.url });
  Object.assign(globalThis, { window: dom.window, document: dom.window.document });
  const React = (await import(path.join(installed, "node_modules/react/index.js"))).default;
  const { createRoot } = (await import(path.join(installed, "node_modules/react-dom/client.js"))).default;
  const { ConfabClient } = await import(path.join(installed, "package/confab.js"));
  const { useConfabSession } = await import(path.join(installed, "package/react.js"));

  await fetch(`${harness.llm_url}/_standin/script`, {
    method: "POST",
    body: JSON.stringify({ model: "package-standin", steps: [{ text: "Hello from the stand-in, streamed in pieces.", delay_ms: 60 }] }),
  });
  const token = await hs256({ sub: "tess", name: "Tess", exp: Math.floor(Date.now() / 1000) + 600 });
  const client = new ConfabClient({ baseUrl: harness.url, getToken: async () => token, storage: null });
  const { id } = await client.createSession({ title: "From React" });

  const h = React.createElement;
  const seen = { streamed: [] };
  function Chat() {
    const chat = useConfabSession(client, id);
    seen.chat = chat;
    if (chat.streaming) seen.streamed.push(chat.streaming.text);
    return h("div", null,
      h("p", { id: "state" }, chat.state),
      h("ul", null, chat.messages.map((m) => h("li", { key: m.seq }, `${m.author.name}: ${m.text}`))),
      chat.streaming ? h("p", { id: "streaming" }, chat.streaming.text) : null);
  }
  const container = document.getElementById("root");
  const reactRoot = createRoot(container);
  reactRoot.render(h(React.StrictMode, null, h(Chat)));
  const until = async (what, ok) => {
    for (let i = 0; i < 200; i++) {
      if (ok()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`timed out waiting for ${what}: ${container.textContent}`);
  };
  await until("online", () => document.getElementById("state")?.textContent === "online");
  seen.chat.send("hi from React");
  await until("the sent message", () => container.textContent.includes("Tess: hi from React"));
  await until("the stored reply", () => container.textContent.includes("Assistant: Hello from the stand-in, streamed in pieces."));
  // It streamed: the component rendered growing prefixes of the reply.
  const partial = seen.streamed.filter((t) => t.length && t.length < "Hello from the stand-in, streamed in pieces.".length);
  assert.ok(partial.length >= 2, JSON.stringify(seen.streamed));
  assert.equal(document.getElementById("streaming"), null);
  // The server has both, in order.
  const history = await client.history(id);
  assert.deepEqual(history.messages.map((m) => m.text), ["hi from React", "Hello from the stand-in, streamed in pieces."]);
  // Unmounting closes the socket.
  reactRoot.unmount();
  assert.equal(seen.chat.session.state, "closed");
});
