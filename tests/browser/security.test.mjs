// Browser-side security: no user- or token-controlled string becomes markup
// (checked with the CSP switched off, so the pages are safe by themselves),
// only allowed origins may embed the chat page and hand it a token, and a
// socket whose token expires renews itself without a gap.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import path from "node:path";
import { artifacts, hs256, launchBrowser, newPage, startHarness, unsigned } from "./support.mjs";

let browser;
const runtimes = [];
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  for (const r of runtimes) r.stop();
});

async function runtime(name, vars) {
  const r = await startHarness(name, vars);
  runtimes.push(r);
  return r;
}

async function api(base, token, method, route, body) {
  const res = await fetch(base + route, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${route}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function devToken(base, body) {
  const res = await fetch(base + "/v1/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return (await res.json()).token;
}

/** Markup that would leave a trace if it were parsed: an element with a
 *  known id, a script handler that sets a global, a redirect. */
const payload = (tag) => `<img id=pwn-${tag} src=x onerror=window.pwned=1><meta http-equiv=refresh content=0;url=/x>`;

/** Nothing parsed, nothing ran, nothing threw. */
async function assertInert(p, errors, label) {
  const traces = await p.evaluate(() => ({
    elements: document.querySelectorAll("[id^=pwn], meta[http-equiv], form[action], body img").length,
    ran: window.pwned ?? null,
  }));
  assert.deepEqual(traces, { elements: 0, ran: null }, label);
  assert.deepEqual(errors, [], `${label}: page errors`);
}

test("every user-controlled field is shown as text, with the CSP off", async () => {
  const { url: base } = await runtime("markup", { ENVIRONMENT: "development" });
  const names = { user: payload("name"), sub: `m <b id=pwn-sub>`, agent: payload("agent") };
  const mallory = await devToken(base, { name: names.user, sub: names.sub });
  const dana = await devToken(base, { name: names.agent, sub: "dana-markup", roles: ["admin"] });
  const session = await api(base, mallory, "POST", "/v1/sessions", {
    title: payload("title"),
    contact: { name: payload("contact"), email: "mallory@example.com" },
  });

  // The user's page (token handed over as a link token).
  const m = await newPage(browser, { bypassCSP: true });
  await m.page.goto(`${base}/?session=${session.id}#token=${mallory}`);
  await m.page.locator("#status[data-state=online]").waitFor();
  await m.page.getByRole("textbox", { name: "Message", exact: true }).fill(payload("message"));
  await m.page.keyboard.press("Enter");
  await m.page.locator(".msg.kind-user .text", { hasText: "pwn-message" }).waitFor();
  // A reaction is free text too (up to 16 characters, no spaces).
  const { ticket } = await api(base, mallory, "POST", `/v1/sessions/${session.id}/tickets`);
  const ws = new WebSocket(`${base.replace("http", "ws")}/v1/sessions/${session.id}/ws?ticket=${ticket}`);
  await new Promise((resolve) => ws.addEventListener("open", resolve));
  ws.send(JSON.stringify({ type: "react", seq: 1, emoji: "<b/id=pwn-e>", action: "add" }));
  await m.page.locator(".reaction", { hasText: "<b/id=pwn-e>" }).waitFor();
  ws.close();

  // The admin console: listing, live view, takeover with a markup name.
  const d = await newPage(browser, { bypassCSP: true });
  await d.page.goto(`${base}/admin#token=${dana}`);
  await d.page.getByLabel("Owner").fill(names.sub);
  await d.page.getByRole("button", { name: "Apply" }).click();
  // The unfiltered first page shows the same rows; wait for the filtered one.
  await d.page.locator("#rows[aria-busy=false]").waitFor({ state: "attached" });
  await d.page.getByRole("cell", { name: names.sub, exact: true }).waitFor();
  await d.page.getByRole("cell", { name: payload("title"), exact: true }).waitFor();
  await d.page.getByRole("button", { name: /^Open session/ }).click();
  await d.page.locator(".msg .text", { hasText: "pwn-message" }).waitFor();
  await d.page.getByRole("button", { name: "Claim", exact: true }).click();
  await d.page.getByLabel("Reply as agent").fill("hello from support");
  await d.page.getByRole("button", { name: "Send" }).click();
  await m.page.getByText(`${names.agent} (support agent) has joined the conversation.`).waitFor();
  await m.page.locator(".msg.kind-agent .author", { hasText: names.agent }).waitFor();
  assert.equal(await m.page.locator("#whoami").textContent(), `Signed in as ${names.user}`);

  // A crafted link to the console: an unsigned token whose name is markup.
  const l = await newPage(browser, { bypassCSP: true });
  const link = unsigned({ sub: "x", exp: 9999999999, name: payload("link") });
  await l.page.goto(`${base}/admin#token=${link}`);
  await l.page.getByRole("heading", { name: "Admins only" }).waitFor();
  await l.page.getByText(`${payload("link")} does not hold the admin role.`).waitFor();
  // No <meta> was parsed (assertInert below), so no refresh can fire.
  assert.equal(new URL(l.page.url()).pathname, "/admin");

  for (const [p, label] of [[m, "chat page"], [d, "admin console"], [l, "link token"]]) {
    await assertInert(p.page, p.errors, label);
  }
  await l.page.screenshot({ path: path.join(artifacts, "link-token.png") });
});

/** A page on its own origin that frames (or opens) Confab and posts a token;
 *  `build` gets the request path. */
function hostPage(build) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(build(req.url));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => server.close(),
  })));
}

test("production pages take a token only from their app: allowed parents, #token=, window.CONFAB_TOKEN", async () => {
  let base = "", token = "", renewal = null;
  // At /renew: a page that hands over a short-lived token, then a fresh one
  // whenever the chat page asks (confab-token-request).
  const renewing = () => `<!doctype html><iframe id=f width=900 height=600 src="${base}/?session=${renewal.session}"></iframe><script>
    const f = document.getElementById("f");
    window.requests = 0;
    f.addEventListener("load", () => setTimeout(() => f.contentWindow.postMessage({ type: "confab-token", token: ${JSON.stringify(renewal?.first)} }, "*"), 300));
    addEventListener("message", (e) => {
      if (e.source !== f.contentWindow || e.data?.type !== "confab-token-request") return;
      window.requests++;
      f.contentWindow.postMessage({ type: "confab-token", token: ${JSON.stringify(renewal?.fresh)} }, e.origin);
    });
    </script>`;
  const framing = (path) => path === "/renew" ? renewing() : `<!doctype html><iframe id=f width=900 height=600 src="${base}/"></iframe><script>
    const f = document.getElementById("f");
    f.addEventListener("load", () => {
      window.frameLoaded = true;
      setTimeout(() => f.contentWindow.postMessage({ type: "confab-token", token: ${JSON.stringify(token)} }, "*"), 500);
    });
    </script>`;
  const opening = () => `<!doctype html><button id=go>go</button><script>
    document.getElementById("go").onclick = () => {
      const w = window.open("${base}/");
      window.posts = 0;
      setInterval(() => { w.postMessage({ type: "confab-token", token: ${JSON.stringify(token)} }, "*"); window.posts++; }, 300);
    };
    </script>`;
  const good = await hostPage(framing);
  const evil = await hostPage(framing);
  const opener = await hostPage(opening);
  try {
    // No leeway: a token's socket ends exactly at its exp.
    ({ url: base } = await runtime("embed", { ENVIRONMENT: "production", ALLOWED_ORIGINS: good.url, JWT_LEEWAY_SECONDS: "0" }));
    token = await hs256({ sub: "grace", name: "Grace", exp: Math.floor(Date.now() / 1000) + 3600 });

    // The headers say exactly who may frame each page.
    const chatCsp = (await fetch(`${base}/`)).headers.get("content-security-policy");
    assert.match(chatCsp, new RegExp(`frame-ancestors 'self' ${good.url}$`));
    assert.match(chatCsp, /form-action 'self'/);
    const adminCsp = (await fetch(`${base}/admin`)).headers.get("content-security-policy");
    assert.match(adminCsp, /frame-ancestors 'none'$/);

    // An allowed app frames the page and signs its user in.
    const g = await newPage(browser);
    await g.page.goto(good.url);
    const inGood = g.page.frameLocator("#f");
    await inGood.locator("#whoami").getByText("Signed in as Grace").waitFor();

    // A foreign page cannot frame it at all.
    const e = await newPage(browser);
    await e.page.goto(evil.url);
    // The frame's load event fires for the browser's error page too.
    await e.page.waitForFunction(() => window.frameLoaded === true);
    const framed = e.page.frames().find((f) => f.url().startsWith(base));
    assert.equal(framed, undefined, "the browser refused to render the chat page in a foreign frame");

    // Nor can it hand a token to a window it opened: only a parent frame counts.
    const o = await newPage(browser);
    await o.page.goto(opener.url);
    const [popup] = await Promise.all([o.page.waitForEvent("popup"), o.page.click("#go")]);
    await popup.getByRole("heading", { name: "Sign-in needed" }).waitFor();
    // Several token messages have been posted to it since it listened.
    await o.page.waitForFunction(() => window.posts >= 5);
    assert.equal(await popup.locator("#whoami").textContent(), "");

    // The other two ways an app hands the page its token, in production:
    // a #token= link (removed from the address bar at once) …
    const l = await newPage(browser);
    await l.page.goto(`${base}/#token=${token}`);
    await l.page.getByText("Signed in as Grace").waitFor();
    assert.equal(new URL(l.page.url()).hash, "", "the token left the address bar");
    // … and window.CONFAB_TOKEN, set before the page's scripts run.
    const w = await newPage(browser);
    const other = await hs256({ sub: "hal", name: "Hal", exp: Math.floor(Date.now() / 1000) + 3600 });
    await api(base, other, "POST", "/v1/sessions", { title: "Hal's topic" });
    await w.page.addInitScript((t) => { window.CONFAB_TOKEN = t; }, other);
    await w.page.goto(`${base}/`);
    await w.page.getByText("Signed in as Hal").waitFor();
    // Signed in for real: the page lists Hal's sessions from the API.
    await w.page.getByRole("button", { name: "Hal's topic" }).waitFor();

    // An embedded page whose token runs out asks its parent for a fresh one
    // and carries on: the socket closed with 4001 resumes with no gap.
    const now = Math.floor(Date.now() / 1000);
    renewal = {
      first: await hs256({ sub: "ivy", name: "Ivy", exp: now + 20 }),
      fresh: await hs256({ sub: "ivy", name: "Ivy", exp: now + 3600 }),
    };
    renewal.session = (await api(base, renewal.fresh, "POST", "/v1/sessions", { title: "Ivy's topic" })).id;
    const r = await newPage(browser);
    await r.page.goto(`${good.url}/renew`);
    const ivy = r.page.frameLocator("#f");
    await ivy.locator("#whoami").getByText("Signed in as Ivy").waitFor();
    await ivy.locator("#status[data-state=online]").waitFor();
    const inner = r.page.frames().find((f) => f.url().startsWith(base));
    await inner.evaluate(() => {
      const el = document.getElementById("status");
      window.states = [];
      new MutationObserver(() => window.states.push(el.dataset.state)).observe(el, { attributes: true, childList: true, subtree: true });
    });
    await r.page.waitForFunction(() => window.requests >= 1, null, { timeout: 40000 });
    // Another of Ivy's devices writes after the renewal; the page shows it.
    const { ticket } = await api(base, renewal.fresh, "POST", `/v1/sessions/${renewal.session}/tickets`);
    const device = new WebSocket(`${base.replace("http", "ws")}/v1/sessions/${renewal.session}/ws?ticket=${ticket}`);
    await new Promise((resolve) => device.addEventListener("open", resolve));
    device.send(JSON.stringify({ type: "send", client_id: "after-renewal", text: "written after the renewal" }));
    await ivy.getByText("written after the renewal").waitFor();
    device.close();
    const states = await inner.evaluate(() => window.states);
    assert.ok(states.every((st) => st === "online"), `no visible gap: ${states.join(", ")}`);
    assert.deepEqual([...g.errors, ...e.errors, ...o.errors, ...l.errors, ...w.errors, ...r.errors], []);
  } finally {
    for (const s of [good, evil, opener]) s.close();
  }
});

test("a socket whose token expires renews with a fresh ticket and misses nothing", async () => {
  // No leeway, so a 5-second token ends its socket after 5 seconds.
  const { url: base } = await runtime("renew", { ENVIRONMENT: "development", JWT_LEEWAY_SECONDS: "0" });
  const p = await newPage(browser);
  await p.page.goto(`${base}/v1/client-config`);
  const result = await p.page.evaluate(async () => {
    const { ConfabClient } = await import("/confab.js");
    const mint = async (sub, ttl) => {
      const r = await fetch("/v1/dev/token", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: sub, sub, ttl_seconds: ttl }),
      });
      return (await r.json()).token;
    };
    const ownerToken = await mint("renew-owner", 3600);
    const owner = new ConfabClient({ getToken: () => ownerToken });
    const s = await owner.createSession({ title: "renewal" });
    await owner.addMember(s.id, "renew-reader");
    let mints = 0;
    const reader = new ConfabClient({ getToken: () => (mints++, mint("renew-reader", 5)) });
    const online = (chat) => new Promise((resolve) => {
      const check = () => chat.state === "online" && resolve();
      chat.addEventListener("status", check);
      check();
    });
    const r = reader.session(s.id, { outboxKey: "renew-reader" });
    const states = [];
    const seen = [];
    let renewals = 0;
    r.addEventListener("status", (e) => states.push(e.detail.state));
    r.addEventListener("renew", () => renewals++);
    r.addEventListener("message", (e) => seen.push(e.detail.text));
    r.connect();
    await online(r);
    const w = owner.session(s.id, { outboxKey: "renew-owner" });
    w.connect();
    await online(w);
    const sent = [];
    for (let i = 0; i < 40; i++) {
      sent.push(`m${i}`);
      w.send(`m${i}`);
      await new Promise((t) => setTimeout(t, 300));
    }
    const deadline = Date.now() + 10000;
    while (seen.length < sent.length && Date.now() < deadline) await new Promise((t) => setTimeout(t, 100));
    r.close();
    w.close();
    return { states, seen, sent, renewals, mints };
  });
  assert.ok(result.renewals >= 2, `renewed ${result.renewals} times in 12 s of 5 s tokens`);
  assert.deepEqual(result.seen, result.sent, "every message once, in order");
  // Online from the first connect to the close: no visible gap.
  assert.deepEqual(result.states, ["connecting", "online", "closed"]);
  assert.deepEqual(p.errors, []);
});
