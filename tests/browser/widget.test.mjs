// The embeddable widget (public/widget.js, the /widget panel) on a product's
// page served from an origin of its own, as a product team embeds it: a
// visitor chats with the assistant, sees unread messages while the panel is
// closed, keeps the conversation across a page navigation, sees the agent
// who takes over, and uses it all by keyboard; the same snippet on an origin
// the deployment does not allow fails closed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import zlib from "node:zlib";
import { artifacts, hs256, launchBrowser, newPage, root, startHarness } from "./support.mjs";

let harness, base, browser, shop, sameSite, elsewhere;
const MODEL = "widget-standin";
/** The launcher's budget: what a page downloads before the panel opens. */
const LAUNCHER_BUDGET_BYTES = 15 * 1024;

/** A product's site: two pages carrying the snippet, on an origin of its
 *  own. `host` localhost makes it another site than Confab's 127.0.0.1, as
 *  a product's site is: the panel is then a third-party frame, which the
 *  test's browser denies storage. */
function site(host = "localhost") {
  // The product's own signed-in page: it mounts the widget itself and
  // hands it its user's token (minted by its backend: here, /token).
  const app = () => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Account</title></head>
    <body><h1>Your account</h1>
    <script src="${base}/widget.js" data-mount="manual"></script>
    <script>
      window.tokenCalls = 0;
      Confab.mount({ title: "Help", getToken: async () => { window.tokenCalls++; return (await fetch("/token")).text(); } })
        .then((w) => { window.widget = w; });
    </script></body></html>`;
  const page = (title) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>
    <meta name="viewport" content="width=device-width, initial-scale=1"></head>
    <body style="font-family:sans-serif;margin:40px"><h1>${title}</h1>
    <p><a href="/">Home</a> · <a href="/pricing">Pricing</a></p><button type="button">Add to cart</button>
    <script src="${base}/widget.js" data-title="Support" data-greeting="Hi! Ask us anything."
      data-require="name,email" data-color="#0a7d55" async></script></body></html>`;
  const server = http.createServer(async (req, res) => {
    if (req.url === "/token") {
      res.writeHead(200, { "content-type": "text/plain" });
      return res.end(await hs256({ sub: "sam-signed-in", name: "Sam", exp: Math.floor(Date.now() / 1000) + 600 }));
    }
    res.writeHead(200, { "content-type": "text/html" });
    res.end(req.url === "/app" ? app() : page(req.url === "/pricing" ? "Pricing" : "Acme shop"));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    url: `http://${host}:${server.address().port}`,
    close: () => server.close(),
  })));
}

before(async () => {
  // The site's origin must be known before the runtime starts (it goes
  // into ALLOWED_ORIGINS), and the runtime's before the site serves pages.
  shop = await site();
  sameSite = await site("127.0.0.1");
  elsewhere = await site();
  harness = await startHarness("widget", {
    ENVIRONMENT: "production",
    ALLOWED_ORIGINS: `${shop.url},${sameSite.url}`,
    ALLOW_VISITORS: "on",
    LLM_PROVIDERS: "openai",
    OPENAI_BASE_URL: "{llm_url}/v1",
    OPENAI_MODEL: MODEL,
  });
  base = harness.url;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  harness?.stop();
  shop?.close();
  elsewhere?.close();
  sameSite?.close();
});

/** Requests a page makes to Confab's origin, by path. */
function confabRequests(page) {
  const seen = [];
  page.on("request", (r) => r.url().startsWith(base) && seen.push(new URL(r.url()).pathname));
  return seen;
}

const bubble = (page) => page.locator("[data-confab-widget] button[aria-expanded]");
const panel = (page) => page.frameLocator("[data-confab-widget] iframe");

test("a visitor chats from a product's page: pre-chat form, streaming reply, unread while closed, navigation, takeover", async () => {
  // A reply slow enough to close the panel while it streams.
  await fetch(`${harness.llm_url}/_standin/script`, {
    method: "POST",
    body: JSON.stringify({ model: MODEL, steps: [{ text: "Your parcel left our warehouse this morning and arrives tomorrow.", delay_ms: 120 }] }),
  });
  const v = await newPage(browser);
  const requests = confabRequests(v.page);
  await v.page.goto(shop.url);
  await bubble(v.page).waitFor();

  // Before the panel opens the page has fetched the launcher and the
  // client configuration, nothing more; the launcher is within budget.
  assert.deepEqual(requests, ["/widget.js", "/v1/client-config"]);
  const gz = zlib.gzipSync(fs.readFileSync(path.join(root, "public/widget.js")), { level: 9 }).length;
  assert.ok(gz < LAUNCHER_BUDGET_BYTES, `widget.js is ${gz} bytes gzipped`);
  fs.writeFileSync(path.join(artifacts, "widget-size.txt"), `${gz}\n`);
  await v.page.screenshot({ path: path.join(artifacts, "widget-closed.png") });

  await bubble(v.page).click();
  const f = panel(v.page);
  await f.getByText("Hi! Ask us anything.").waitFor();
  // Both fields are required here: the form says which is missing.
  await f.getByLabel("Your name *").fill("Vera");
  await f.getByRole("button", { name: "Start chatting" }).click();
  await f.getByText("Your e-mail: required").waitFor();
  await f.getByLabel("Your e-mail *").fill("vera@example.com");
  await f.getByRole("button", { name: "Start chatting" }).click();

  const text = f.getByRole("textbox", { name: "Write a message…" });
  await text.fill("Where is my parcel?");
  await text.press("Enter");
  await f.locator(".msg.mine", { hasText: "Where is my parcel?" }).waitFor();
  // The reply streams in; the visitor closes the panel before it ends.
  await f.locator(".msg.kind-assistant.streaming").waitFor();
  await v.page.screenshot({ path: path.join(artifacts, "widget-open.png") });
  await text.press("Escape");
  await v.page.locator("[data-confab-widget] .panel[hidden]").waitFor({ state: "attached" });
  // The stored reply counts as unread: a badge, the bubble's name, the tab's title.
  const badge = v.page.locator("[data-confab-widget] .badge");
  await badge.filter({ hasText: "1" }).waitFor();
  assert.match(await bubble(v.page).getAttribute("aria-label"), /Open chat \(1 new messages\)/);
  await v.page.waitForFunction(() => document.title.startsWith("(1) New message"));

  // Opening reads it: no badge, the title back, the whole reply shown.
  await bubble(v.page).click();
  const answer = f.locator(".msg.kind-assistant:not(.streaming)", { hasText: "arrives tomorrow." });
  await answer.waitFor();
  await badge.waitFor({ state: "hidden" });
  // The visitor rates it: the thumb shows as pressed once the server has it.
  await answer.getByRole("button", { name: /^Good answer/ }).click();
  await answer.locator("button[data-rating=up][aria-pressed=true]").waitFor();
  await v.page.waitForFunction(() => document.title === "Acme shop");

  // The browser denies the third-party panel storage of its own, so the
  // launcher keeps its state in the host page's storage (the panel never
  // wrote to its own).
  assert.equal(await f.locator("body").evaluate(() => {
    try { return localStorage.length; } catch { return "denied"; }
  }), "denied");
  // The page learns the visitor's id (to link the conversation to an
  // account later), never a token.
  const visitorId = await v.page.evaluate(() => window.Confab.widget.visitorId);
  assert.match(visitorId, /^visitor-[0-9a-f]{32}$/);
  const session = await v.page.evaluate(() =>
    JSON.parse(Object.entries(localStorage).find(([k]) => k.startsWith("confab.widget.host.confab.widget.session."))[1]));
  // Contact details reached the session, as today's contact does.
  const admin = await hs256({ sub: "agent-dana", name: "Dana", roles: ["admin"], exp: Math.floor(Date.now() / 1000) + 600 });
  const detail = await (await fetch(`${base}/v1/admin/sessions/${session}`, { headers: { authorization: `Bearer ${admin}` } })).json();
  assert.deepEqual(detail.session.contact, { name: "Vera", email: "vera@example.com" }, JSON.stringify(detail));

  // Another page of the site, in the same tab: the panel reopens with the
  // conversation, no form.
  await v.page.getByRole("link", { name: "Pricing" }).click();
  await v.page.getByRole("heading", { name: "Pricing" }).waitFor();
  const g = panel(v.page);
  await g.locator(".msg.mine", { hasText: "Where is my parcel?" }).waitFor();
  await g.locator(".msg.kind-assistant", { hasText: "arrives tomorrow." }).waitFor();
  assert.equal(await g.getByRole("button", { name: "Start chatting" }).count(), 0);

  // "Talk to a person", and a person takes over: the agent's name shows.
  await g.getByRole("button", { name: "Talk to a person" }).click();
  await g.getByText("Waiting for a person to join…").waitFor();
  const claim = await fetch(`${base}/v1/admin/sessions/${session}/claim`, { method: "POST", headers: { authorization: `Bearer ${admin}` } });
  assert.equal(claim.status, 200, await claim.text());
  await g.locator(".notice.joined", { hasText: "Dana joined the conversation" }).waitFor();
  // …and is said to screen readers.
  await g.locator("[aria-live=polite]", { hasText: "Dana joined the conversation" }).waitFor();
  assert.equal(await g.getByText("Waiting for a person to join…").count(), 0);
  assert.deepEqual(v.errors, []);

  // The same, on a phone: the panel takes the whole screen.
  const phone = await newPage(browser, { viewport: { width: 390, height: 740 } });
  await phone.page.goto(shop.url);
  await bubble(phone.page).click();
  await panel(phone.page).getByLabel("Your name *").waitFor();
  const box = await phone.page.locator("[data-confab-widget] .panel").boundingBox();
  assert.deepEqual([box.x, box.y, box.width, box.height], [0, 0, 390, 740]);
  await phone.page.screenshot({ path: path.join(artifacts, "widget-phone.png") });
});

test("the snippet on an origin the deployment does not allow fails closed", async () => {
  const e = await newPage(browser);
  const requests = confabRequests(e.page);
  const errors = [];
  e.page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await e.page.goto(elsewhere.url);
  await e.page.waitForFunction(() => window.Confab && !document.querySelector("[data-confab-widget]") && window.Confab.widget === null);
  assert.ok(errors.some((m) => m.includes(`${elsewhere.url} may not embed the chat at ${base}`)), errors.join("\n"));
  // No bubble, no panel, no identity asked for: only the launcher and the
  // refused configuration request reached Confab.
  assert.deepEqual(requests, ["/widget.js", "/v1/client-config"]);
  // And the panel itself refuses to be framed there.
  const csp = (await fetch(`${base}/widget`)).headers.get("content-security-policy");
  assert.match(csp, new RegExp(`frame-ancestors 'self' ${shop.url} ${sameSite.url}$`));
});

test("keyboard only: open, fill the form, chat, stay inside the panel, Escape back to the bubble", async () => {
  const k = await newPage(browser);
  // A page of the same site as Confab: here the panel keeps its own storage.
  await k.page.goto(sameSite.url);
  await bubble(k.page).waitFor();
  // Tab from the top of the page reaches the bubble after the page's own controls.
  for (let i = 0; i < 6 && !(await bubble(k.page).evaluate((b) => b.getRootNode().activeElement === b)); i++) {
    await k.page.keyboard.press("Tab");
  }
  assert.ok(await bubble(k.page).evaluate((b) => b.getRootNode().activeElement === b), "the bubble takes focus");
  await k.page.keyboard.press("Enter");
  const f = panel(k.page);
  const name = f.getByLabel("Your name *");
  await name.waitFor();
  // Focus went into the panel, on its first field.
  await k.page.waitForFunction(() => document.activeElement?.tagName === "DIV"); // the widget's host
  assert.equal(await name.evaluate((el) => document.activeElement === el), true);
  await k.page.keyboard.type("Kai");
  await k.page.keyboard.press("Tab");
  await k.page.keyboard.type("kai@example.com");
  await k.page.keyboard.press("Tab");
  await k.page.keyboard.press("Enter");
  const text = f.getByRole("textbox", { name: "Write a message…" });
  await text.waitFor();
  assert.equal(await text.evaluate((el) => document.activeElement === el), true);
  await k.page.keyboard.type("Hello by keyboard");
  await k.page.keyboard.press("Enter");
  await f.locator(".msg.mine", { hasText: "Hello by keyboard" }).waitFor();
  // The reply is announced to screen readers through the live region.
  await f.locator("[aria-live=polite]", { hasText: "Stand-in assistant here" }).waitFor();
  // Tab cycles inside the open panel: it never leaves for the page behind.
  for (let i = 0; i < 6; i++) {
    await k.page.keyboard.press("Tab");
    assert.equal(await k.page.evaluate(() => document.activeElement?.tagName), "DIV", `tab ${i} left the panel`);
  }
  await k.page.keyboard.press("Escape");
  await k.page.locator("[data-confab-widget] .panel[hidden]").waitFor({ state: "attached" });
  // Same site: the panel kept its state itself, none of it in the host's storage.
  assert.ok(await f.locator("body").evaluate(() => Object.keys(localStorage).some((k) => k.startsWith("confab.widget.visitor"))));
  assert.deepEqual(await k.page.evaluate(() => Object.keys(localStorage)), []);
  assert.ok(await bubble(k.page).evaluate((b) => b.getRootNode().activeElement === b), "focus is back on the bubble");
  assert.deepEqual(k.errors, []);
});

test("a signed-in user of the product chats as themselves: the host's getToken, no visitor", async () => {
  const s = await newPage(browser);
  const requests = confabRequests(s.page);
  await s.page.goto(`${shop.url}/app`);
  await s.page.waitForFunction(() => window.widget);
  await s.page.evaluate(() => window.widget.open());
  const f = panel(s.page);
  // The form knows the user's name from their token.
  const name = f.getByLabel("Your name *");
  await name.waitFor();
  assert.equal(await name.inputValue(), "Sam");
  await f.getByRole("button", { name: "Start chatting" }).click();
  const text = f.getByRole("textbox", { name: "Write a message…" });
  await text.fill("I am signed in");
  await text.press("Enter");
  await f.locator(".msg.mine", { hasText: "I am signed in" }).waitFor();
  assert.ok(await s.page.evaluate(() => window.tokenCalls) >= 1);
  assert.ok(!requests.includes("/v1/visitors"), requests.join(" "));
  // The conversation is Sam's own, listed under his account.
  const sam = await hs256({ sub: "sam-signed-in", name: "Sam", exp: Math.floor(Date.now() / 1000) + 600 });
  const { sessions } = await (await fetch(`${base}/v1/sessions`, { headers: { authorization: `Bearer ${sam}` } })).json();
  assert.deepEqual(sessions.map((x) => x.title), ["Help"]);
  assert.deepEqual(s.errors, []);
});
