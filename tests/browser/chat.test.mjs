// The web client and admin console in a real browser: Debian's Chromium
// driven by playwright-core, against the real worker in workerd (the same
// harness as every e2e test) with the stand-in LLM.
//
//   node --test tests/browser/      (make test runs it)
//
// Screenshots go to target/browser-artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import zlib from "node:zlib";
import { artifacts, launchBrowser, newPage, startHarness } from "./support.mjs";

let harness, base, llm, browser;
const pages = [];

before(async () => {
  harness = await startHarness("chat", {
    ENVIRONMENT: "development",
    LLM_PROVIDERS: "openai",
    OPENAI_BASE_URL: "{llm_url}/v1",
    OPENAI_MODEL: "standin-1",
    // Round prices, so the test can check the console's figures by hand.
    LLM_PRICES: JSON.stringify([{ provider: "openai", model: "standin-1", input: 1, output: 2 }]),
    // Link previews of the stand-in site (a loopback origin, allowed here only).
    LINK_PREVIEWS: "on",
    LINK_PREVIEW_ALLOW_ORIGINS: "{llm_url}",
  });
  base = harness.url;
  llm = harness.llm_url;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  harness?.stop();
});

async function page(viewport) {
  const p = await newPage(browser, { viewport });
  pages.push(p);
  return p;
}

async function signIn(p, url, name, role = "user") {
  await p.goto(base + url);
  await p.getByLabel("Your name").fill(name);
  await p.getByLabel("Role").selectOption(role);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.locator("#signout").waitFor();
  assert.equal(await p.locator("#whoami").textContent(), `Signed in as ${name}`);
}

// Starts a conversation on the chat page and waits for its socket.
async function startConversation(p, topic, name, email) {
  await p.getByText("New conversation").click();
  await p.getByLabel("Topic (optional)").fill(topic);
  await p.getByLabel("Name").fill(name);
  await p.getByLabel("Email").fill(email);
  await p.getByRole("button", { name: "Start conversation" }).click();
  await p.locator("#status[data-state=online]").waitFor();
}

const texts = (p) => p.locator("#transcript li .text").allTextContents();

// A real PNG (one colour, 8-bit RGB) of `w` x `h`, made with node's zlib.
function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.alloc(1 + w * 3, 0x40);
  row[0] = 0; // no filter
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr), chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0)),
  ]);
}

// The console's usage chart: a bar a day for the last 30 days, today's the
// cost the ledger holds once Ann's two replies are settled, which is what
// the price table makes of their tokens.
async function usageChart(p) {
  const today = new Date().toISOString().slice(0, 10);
  const report = () => p.evaluate(async (day) => {
    const token = localStorage.getItem("confab.token");
    const r = await fetch(`/v1/admin/usage?by=day&from=${day}&to=${day}`, { headers: { authorization: `Bearer ${token}` } });
    return (await r.json()).items[0];
  }, today);
  let day;
  for (let i = 0; i < 100 && !(day?.turns >= 2); i++) {
    day = await report();
    if (!(day?.turns >= 2)) await p.waitForTimeout(100);
  }
  assert.equal(day.turns, 2, "both replies settled in the ledger");
  assert.ok(Math.abs(day.cost_usd - (day.tokens_in * 1 + day.tokens_out * 2) / 1e6) < 1e-9, JSON.stringify(day));
  await p.locator("#spend-refresh").click();
  const bar = p.locator(`#spend-chart rect.bar[data-label="${today.slice(5)}"]`);
  await p.waitForFunction((want) => Number(document.querySelector(`#spend-chart rect.bar[data-label="${want[0]}"]`)?.dataset.value) === want[1], [today.slice(5), day.cost_usd]);
  assert.equal(await p.locator("#spend-chart rect.bar").count(), 30);
  assert.match(await bar.locator("title").textContent(), /: \$0\.[0-9]{6}$/);
  const row = p.locator("#spend-models tr", { hasText: "standin-1" });
  assert.equal(await row.locator("td").nth(2).textContent(), "2");
}

test("chat page and admin console, end to end", async () => {
  // 1. A user signs in, starts a conversation and sees the reply stream in.
  const ann = await page();
  await signIn(ann.page, "/", "Ann");
  await startConversation(ann.page, "Billing question", "Ann Example", "ann@example.com");
  const url = new URL(ann.page.url());
  // Slow the stand-in's stream so the page shows it mid-reply.
  await fetch(`${llm}/_standin/script`, {
    method: "POST",
    body: JSON.stringify({ model: "standin-1", steps: [{ delay_ms: 80 }] }),
  });
  await ann.page.getByRole("textbox", { name: "Message", exact: true }).fill("Hello there, my invoice is wrong");
  await ann.page.keyboard.press("Enter");
  // Mid-stream: some of the reply is shown while the bubble still streams.
  // The text is read in the same poll that sees the bubble streaming: a
  // second round trip could land after the reply ends (CI saw that).
  const partial = await (
    await ann.page.waitForFunction(() => document.querySelector(".msg.kind-assistant.streaming .text")?.textContent)
  ).jsonValue();
  const reply = ann.page.locator(".msg.kind-assistant:not(.streaming) .text");
  await reply.waitFor();
  const full = await reply.textContent();
  assert.match(full, /You said: .*Hello there, my invoice is wrong/);
  assert.ok(partial.length > 0 && partial.length < full.length && full.startsWith(partial), `streamed: "${partial}" before "${full}"`);

  // 2. The same user in a second browser sees the conversation live.
  const sessionId = await ann.page.evaluate(async () => {
    const token = localStorage.getItem("confab.token");
    const r = await fetch("/v1/sessions", { headers: { authorization: `Bearer ${token}` } });
    return (await r.json()).sessions[0].id;
  });
  const ann2 = await page({ width: 390, height: 844 }); // a phone
  await signIn(ann2.page, `/?session=${sessionId}`, "Ann");
  await ann2.page.locator("#status[data-state=online]").waitFor();
  await ann2.page.getByText("Hello there, my invoice is wrong", { exact: true }).waitFor();
  await ann.page.getByRole("textbox", { name: "Message", exact: true }).fill("Sent from my laptop");
  await ann.page.getByRole("button", { name: "Send" }).click();
  await ann2.page.getByText("Sent from my laptop", { exact: true }).waitFor();
  await ann.page.getByText("You are here on 2 devices").waitFor();
  await ann.page.screenshot({ path: path.join(artifacts, "chat.png") });

  // 3. An admin takes over and replies; the user sees the agent's name.
  const dana = await page();
  // The console's first listing is held back until a filtered one has
  // answered: the late, older answer must not fill the table.
  let release;
  const held = new Promise((r) => (release = r));
  let delivered;
  const late = new Promise((r) => (delivered = r));
  let first = true;
  await dana.page.route(/\/v1\/admin\/sessions\?/, async (route) => {
    if (!first) return route.continue();
    first = false;
    const response = await route.fetch();
    await held;
    await route.fulfill({ response });
    delivered();
  });
  await signIn(dana.page, "/admin", "Dana", "admin");
  await dana.page.getByLabel("Owner").fill("nobody-at-all");
  await dana.page.getByRole("button", { name: "Apply" }).click();
  await dana.page.locator("#rows[aria-busy=false]").waitFor({ state: "attached" });
  release();
  await late;
  // The page has had the late answer; give its handler a moment to run.
  await dana.page.evaluate(() => new Promise((r) => setTimeout(r, 300)));
  assert.equal(await dana.page.locator("#rows tr").count(), 0, "the older, unfiltered answer filled the table");
  await dana.page.getByLabel("Owner").fill("dev-ann");
  await dana.page.getByRole("button", { name: "Apply" }).click();
  await dana.page.locator("#rows[aria-busy=false]").waitFor({ state: "attached" });
  await dana.page.getByRole("button", { name: "Open session Billing question" }).click();
  await dana.page.getByText("Sent from my laptop", { exact: true }).waitFor();
  await dana.page.getByText(/Assistant: [1-9][0-9]* replies, [1-9][0-9]* tokens in, [0-9]+ out, \$0\.[0-9]{6};/).waitFor();
  await usageChart(dana.page);
  // Ann asks for a person; the console shows the wait, Dana claims it.
  await ann.page.getByRole("button", { name: "Talk to a person" }).click();
  await ann.page.getByText("Waiting for a person to join…").waitFor();
  await dana.page.getByText(/^Waiting for a person since /).waitFor();
  assert.equal(await ann.page.getByRole("button", { name: "Talk to a person" }).isVisible(), false);
  await dana.page.getByRole("button", { name: "Claim", exact: true }).click();
  await ann.page.getByText("Dana (support agent) has joined the conversation.").waitFor();
  await dana.page.getByText("Assigned to Dana.").waitFor();
  await dana.page.getByLabel("Reply as agent").fill("Hi Ann, Dana from support here.");
  await dana.page.getByRole("button", { name: "Send" }).click();
  const agentMsg = ann.page.locator(".msg.kind-agent", { hasText: "Dana from support" });
  await agentMsg.waitFor();
  assert.equal(await agentMsg.locator(".author").textContent(), "Dana");
  await dana.page.getByRole("button", { name: "Apply" }).click(); // refresh the table
  await dana.page.locator("#rows[aria-busy=false]").waitFor({ state: "attached" });
  // D1 may not have the claim yet (replication trails by up to a second);
  // the row shows what the inbox already said, not the older listing.
  const cells = dana.page.locator(`#rows tr[data-session="${sessionId}"] td`);
  assert.equal(await cells.nth(3).textContent(), "assigned");
  assert.match(await cells.nth(4).textContent(), /^Dana/);
  await dana.page.screenshot({ path: path.join(artifacts, "admin.png"), fullPage: true });

  // 4. Offline: two sends wait in the outbox, then land once each, in order.
  await ann.context.setOffline(true);
  await ann.page.locator("#status[data-state=offline]").waitFor();
  for (const t of ["Offline one", "Offline two"]) {
    await ann.page.getByRole("textbox", { name: "Message", exact: true }).fill(t);
    await ann.page.keyboard.press("Enter");
  }
  await ann.page.getByText("Offline, 2 queued").waitFor();
  await ann.context.setOffline(false);
  await ann.page.locator("#status[data-state=online]").waitFor();
  await ann2.page.getByText("Offline two", { exact: true }).waitFor();
  await ann.page.getByText("Offline two", { exact: true }).waitFor();
  for (const p of [ann.page, ann2.page]) {
    const all = await texts(p);
    assert.deepEqual(all.filter((t) => t.startsWith("Offline")), ["Offline one", "Offline two"]);
  }
  const history = await ann.page.evaluate(async (id) => {
    const token = localStorage.getItem("confab.token");
    const r = await fetch(`/v1/sessions/${id}/messages?limit=100`, { headers: { authorization: `Bearer ${token}` } });
    return (await r.json()).messages.map((m) => [m.seq, m.text]);
  }, sessionId);
  const stored = history.filter(([, t]) => t.startsWith("Offline"));
  assert.deepEqual(stored.map(([, t]) => t), ["Offline one", "Offline two"], "stored exactly once each");
  assert.ok(stored[0][0] < stored[1][0]);
  assert.equal(await ann.page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("confab.outbox")).length), 0);

  // 5. A deleted message disappears on every open page, including the
  // phone, which was offline when it happened: its resume replays the
  // deletion (a change to a message it already had).
  await ann2.context.setOffline(true);
  await ann2.page.locator("#status[data-state=offline]").waitFor();
  await ann.page.getByRole("button", { name: `Delete message ${stored[0][0]}` }).click();
  await ann.page.locator(`li[data-seq="${stored[0][0]}"].deleted`).waitFor();
  assert.ok((await texts(ann2.page)).includes("Offline one"), "the phone is offline and has not seen it");
  await ann2.context.setOffline(false);
  await ann2.page.locator("#status[data-state=online]").waitFor();
  for (const p of [ann.page, ann2.page, dana.page]) {
    await p.locator(`li[data-seq="${stored[0][0]}"].deleted`).waitFor();
    assert.ok(!(await texts(p)).includes("Offline one"));
  }

  // 6. A reply shows under the message it answers, on every page, and the
  // thread view has the two of them.
  const parentSeq = stored[1][0];
  await ann.page.getByRole("button", { name: `Reply to message ${parentSeq}` }).click();
  await ann.page.getByText("Replying to: Offline two").waitFor();
  await ann.page.getByRole("textbox", { name: "Message", exact: true }).fill("A reply in a thread");
  await ann.page.keyboard.press("Enter");
  for (const p of [ann.page, ann2.page]) {
    await p.locator(`li[data-seq="${parentSeq}"] > ol.replies > li`, { hasText: "A reply in a thread" }).waitFor();
  }
  assert.equal(await ann.page.locator("#replying").isVisible(), false, "the reply target is cleared once sent");
  const thread = await ann.page.evaluate(async ([id, seq]) => {
    const token = localStorage.getItem("confab.token");
    const r = await fetch(`/v1/sessions/${id}/messages?thread=${seq}`, { headers: { authorization: `Bearer ${token}` } });
    return (await r.json()).messages.map((m) => m.text);
  }, [sessionId, parentSeq]);
  assert.deepEqual(thread, ["Offline two", "A reply in a thread"]);

  // 7. A poll: a bad one is refused with the server's reason; a good one
  // shows on every page, a vote from the phone updates every tally, and
  // the laptop (the same user) sees it as its own ballot.
  const ask = async (question, options) => {
    const poll = ann.page.locator("#poll");
    if (!(await poll.evaluate((d) => d.open))) await ann.page.getByText("Ask as a poll").click();
    await ann.page.getByLabel("Options, one per line (2 to 10)").fill(options);
    await ann.page.getByRole("textbox", { name: "Message", exact: true }).fill(question);
    await ann.page.getByRole("button", { name: "Send" }).click();
  };
  await ask("A poll of one?", "Only");
  await ann.page.getByText("a poll has 2-10 options, not 1").waitFor();
  await ask("Which day suits you?", "Monday\nTuesday");
  const option = (p, name) => p.locator(".msg", { hasText: "Which day suits you?" }).getByRole("button", { name });
  for (const p of [ann.page, ann2.page, dana.page]) await option(p, /^Tuesday 0$/).waitFor();
  assert.equal(await option(dana.page, /^Tuesday/).isDisabled(), true, "the console shows polls read-only");
  await option(ann2.page, /^Tuesday/).click();
  for (const p of [ann.page, ann2.page, dana.page]) await option(p, /^Tuesday 1$/).waitFor();
  for (const p of [ann.page, ann2.page]) {
    assert.equal(await option(p, /^Tuesday/).getAttribute("aria-pressed"), "true");
    assert.equal(await option(p, /^Monday/).getAttribute("aria-pressed"), "false");
  }
  // Clicking the chosen option again withdraws the vote, everywhere.
  await option(ann.page, /^Tuesday/).click();
  for (const p of [ann.page, ann2.page, dana.page]) await option(p, /^Tuesday 0$/).waitFor();
  assert.equal(await option(ann2.page, /^Tuesday/).getAttribute("aria-pressed"), "false");

  // 8. A link gets a preview card, fetched by the server from the
  // (stand-in) page, on every page that shows the message.
  await ann.page.getByRole("textbox", { name: "Message", exact: true }).fill(`Read this: ${llm}/site/article`);
  await ann.page.keyboard.press("Enter");
  for (const p of [ann.page, ann2.page]) {
    const card = p.locator(".msg .link-card", { hasText: "Edge chat & you" });
    await card.waitFor();
    assert.equal(await card.getAttribute("href"), `${llm}/site/article`);
    assert.equal(await card.locator(".site").textContent(), "Stand-in Times");
  }

  // 9. An image: picked on the laptop, downsized there to 1600 px, uploaded
  // sealed, sent with an empty text, and shown on every page (the admin
  // console too) through a signed link. A file of a refused type says why.
  await ann.page.getByLabel("Attach files (images, PDF, text)").setInputFiles({
    name: "whiteboard.png", mimeType: "image/png", buffer: png(2400, 1200),
  });
  await ann.page.locator("#attached li", { hasText: "whiteboard.png" }).waitFor();
  await ann.page.getByRole("button", { name: "Send" }).click();
  for (const p of [ann.page, ann2.page, dana.page]) {
    const img = p.locator(".msg img.file-image[alt='whiteboard.png']");
    await img.waitFor();
    await p.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
    assert.deepEqual(await img.evaluate((el) => [el.naturalWidth, el.naturalHeight]), [1600, 800]);
    assert.match(await img.getAttribute("src"), /\/v1\/files\//);
  }
  await ann.page.getByLabel("Attach files (images, PDF, text)").setInputFiles({
    name: "page.html", mimeType: "text/html", buffer: Buffer.from("<script>alert(1)</script>"),
  });
  await ann.page.getByText("this type of file is not accepted").waitFor();

  // 10. Search: the other device finds a message by one of its words once
  // it is replicated; the match is marked, markup in the message stays
  // text, and the result opens its conversation.
  await ann.page.getByRole("textbox", { name: "Message", exact: true }).fill("<img src=x onerror=alert(1)> Refund please");
  await ann.page.keyboard.press("Enter");
  const results = ann2.page.locator("#search-results");
  const hit = results.locator(".search-hit", { hasText: "Refund please" });
  for (let tries = 0; !(await hit.count()); tries++) {
    assert.ok(tries < 50, "not found within 10 s");
    await results.evaluate((el) => el.replaceChildren());
    await ann2.page.getByRole("searchbox", { name: "Search messages" }).fill("refund");
    await ann2.page.getByRole("button", { name: "Search", exact: true }).click();
    await results.locator("li").first().waitFor();
    if (!(await hit.count())) await ann2.page.waitForTimeout(200);
  }
  assert.equal(await hit.locator("mark").textContent(), "Refund");
  assert.match(await hit.locator(".search-snippet").textContent(), /^<img src=x onerror=alert\(1\)> Refund please$/);
  assert.equal(await results.locator("img").count(), 0, "markup in a snippet is text");
  assert.match(await hit.locator(".search-where").textContent(), /^Billing question · Ann/);
  await hit.click();
  await ann2.page.locator("#transcript .msg.found", { hasText: "Refund please" }).waitFor();
  assert.equal(await ann2.page.locator("#chat-title").textContent(), "Billing question");
  // An admin searches every session from the console.
  await dana.page.getByRole("searchbox", { name: "Search every session's messages" }).fill("refund");
  await dana.page.getByRole("button", { name: "Search", exact: true }).click();
  const adminHit = dana.page.locator("#search-results .search-hit", { hasText: "Refund please" });
  await adminHit.waitFor();
  assert.equal(await adminHit.locator("mark").textContent(), "Refund");
  assert.equal(await dana.page.locator("#search-results img").count(), 0, "markup in a snippet is text");
  await adminHit.click();
  await dana.page.locator("#live-title", { hasText: "Billing question" }).waitFor();

  // 11. A report and a removal: Ann reports the assistant's first answer
  // with a reason; it waits in the console's moderation queue, shown with
  // its text; Dana removes it, and every open page shows who removed it
  // and why, as text.
  const answer = ann.page.locator(".msg.kind-assistant").first();
  const seq = await answer.getAttribute("data-seq");
  const replyText = await answer.locator(".text").textContent();
  await answer.getByRole("button", { name: `Report message ${seq}`, exact: true }).click();
  await ann.page.getByLabel(`Why report message ${seq}`).selectOption("harassment");
  await ann.page.getByRole("button", { name: "Send report" }).click();
  await ann.page.getByText("Reported. A moderator will look at it.").waitFor();
  await dana.page.locator("#reports-refresh").click();
  const reported = dana.page.locator(`#reports li[data-session="${sessionId}"][data-seq="${seq}"]`);
  await reported.waitFor();
  assert.equal(await reported.locator(".report-text").textContent(), replyText);
  assert.match(await reported.textContent(), /1 report\(s\): harassment 1/);
  await reported.getByRole("button", { name: `Remove (message ${seq})` }).click();
  await reported.waitFor({ state: "detached" });
  for (const p of [ann.page, ann2.page, dana.page]) {
    const gone = p.locator(`#transcript li[data-seq="${seq}"]`);
    await gone.locator(".text", { hasText: "Removed by Dana (Harassment)." }).waitFor();
    assert.equal(await gone.locator(".actions button").count(), 0, "a removed message offers nothing");
  }
  assert.equal(await ann.page.locator("#transcript").getByText(replyText, { exact: true }).count(), 0);

  // 12. A block: Ann blocks Dana; Dana's messages leave her page at once
  // and a new one never reaches it (Ann's own later message does); Undo
  // brings them back.
  await ann.page.getByRole("button", { name: "Block Dana" }).first().click();
  await ann.page.getByText("You blocked Dana. You will not see their messages.").waitFor();
  assert.equal(await ann.page.locator("#transcript li.kind-agent").count(), 0);
  await dana.page.getByLabel("Reply as agent").fill("Are you still there?");
  await dana.page.getByRole("button", { name: "Send" }).click();
  await dana.page.locator("#transcript .msg", { hasText: "Are you still there?" }).waitFor();
  await ann.page.getByRole("textbox", { name: "Message", exact: true }).fill("after the block");
  await ann.page.keyboard.press("Enter");
  await ann.page.locator("#transcript .msg.mine", { hasText: "after the block" }).waitFor();
  assert.equal(await ann.page.locator("#transcript li.kind-agent").count(), 0, "a blocked agent's message arrived");
  await ann.page.getByRole("button", { name: "Undo" }).click();
  await ann.page.locator("#transcript .msg.kind-agent", { hasText: "Are you still there?" }).waitFor();
  await ann2.page.screenshot({ path: path.join(artifacts, "chat-phone.png") });
  // No page threw an uncaught exception along the way.
  assert.deepEqual(pages.flatMap((p) => p.errors), []);
});

test("two agents claim one waiting session from their live queues: one wins, the other is told", async () => {
  const [eve, finn] = [await page(), await page()];
  await signIn(eve.page, "/admin", "Eve", "admin");
  await signIn(finn.page, "/admin", "Finn", "admin");
  for (const a of [eve, finn]) await a.page.locator("#inbox-state", { hasText: "live" }).waitFor();

  const gus = await page();
  await signIn(gus.page, "/", "Gus");
  await startConversation(gus.page, "Locked out", "Gus Example", "gus@example.com");
  await gus.page.getByRole("button", { name: "Talk to a person" }).click();

  // The session reaches both queues over the inbox socket, without a reload.
  const claims = [eve, finn].map((a) => a.page.getByRole("button", { name: "Claim session Locked out" }));
  await Promise.all(claims.map((c) => c.waitFor()));
  // Both claims are held until both were sent, so they truly race (else
  // the first one's inbox item takes the button from the second page).
  let sent = 0;
  let release;
  const bothSent = new Promise((r) => (release = r));
  for (const a of [eve, finn]) {
    await a.page.route(/\/claim$/, async (route) => {
      if (++sent === 2) release();
      await bothSent;
      await route.continue();
    });
  }
  await Promise.all(claims.map((c) => c.click()));

  const taken = "Locked out was taken by another agent.";
  const lost = await Promise.race([eve, finn].map((a, i) => a.page.getByText(taken).waitFor().then(() => i)));
  const [winner, loser] = lost === 0 ? [finn, eve] : [eve, finn];
  const name = lost === 0 ? "Finn" : "Eve";
  await winner.page.getByText(`Assigned to ${name}.`).waitFor();
  assert.equal(await winner.page.locator("#queue-note").textContent(), "", "the winner was told it lost");
  await gus.page.getByText(`${name} (support agent) has joined the conversation.`).waitFor();
  // The loser's console was not opened on the session as its own.
  assert.equal(await loser.page.getByText(`Assigned to ${lost === 0 ? "Eve" : "Finn"}.`).count(), 0);
  // Claimed, it leaves both queues.
  for (const c of claims) await c.waitFor({ state: "detached" });

  // The winner transfers it to the other agent, by user id; the user sees
  // who has it now.
  const loserId = await loser.page.evaluate(() => {
    const claims = localStorage.getItem("confab.token").split(".")[1];
    return JSON.parse(atob(claims.replace(/-/g, "+").replace(/_/g, "/"))).sub;
  });
  await winner.page.getByLabel("Transfer to agent (user id)").fill(loserId);
  await winner.page.getByRole("button", { name: "Transfer" }).click();
  await winner.page.getByText(`Assigned to ${loserId}.`).waitFor();
  await gus.page.getByText(`${loserId} (support agent) has joined the conversation.`).waitFor();

  // Gus erases the conversation: its line leaves both consoles' tables,
  // where it had appeared live when it was created.
  const auth = (p) => p.evaluate(() => ({ authorization: `Bearer ${localStorage.getItem("confab.token")}` }));
  const headers = await auth(gus.page);
  const id = await gus.page.evaluate(async (h) => (await (await fetch("/v1/sessions", { headers: h })).json()).sessions[0].id, headers);
  for (const a of [eve, finn]) await a.page.locator(`#rows tr[data-session="${id}"]`).waitFor();
  await gus.page.evaluate(async ([h, i]) => fetch(`/v1/sessions/${i}`, { method: "DELETE", headers: h }), [headers, id]);
  for (const a of [eve, finn]) await a.page.locator(`#rows tr[data-session="${id}"]`).waitFor({ state: "detached" });
  assert.deepEqual([eve, finn, gus].flatMap((p) => p.errors), []);
});

test("a user rates the assistant's reply and has it answered again", async () => {
  const cy = await page();
  await signIn(cy.page, "/", "Cy");
  await startConversation(cy.page, "Feedback", "Cy Example", "cy@example.com");
  await fetch(`${llm}/_standin/script`, {
    method: "POST",
    body: JSON.stringify({ model: "standin-1", steps: [{ text: "A first, unhelpful answer." }, { text: "A better answer." }] }),
  });
  await cy.page.getByRole("textbox", { name: "Message", exact: true }).fill("How do refunds work?");
  await cy.page.keyboard.press("Enter");
  const first = cy.page.locator(".msg.kind-assistant", { hasText: "A first, unhelpful answer." });
  await first.waitFor();
  const seq = await first.getAttribute("data-seq");

  // Thumbs down, with a reason: the button shows as pressed once the
  // server has it (the `rated` frame), and the reason reaches the admin view.
  const down = cy.page.getByRole("button", { name: `Bad answer: rate message ${seq} down` });
  await down.click();
  await cy.page.locator(`.msg[data-seq="${seq}"] button[data-rating=down][aria-pressed=true]`).waitFor();
  await cy.page.getByLabel(`What was wrong with message ${seq} (optional)`).fill("It skipped the refund window");
  await cy.page.getByRole("button", { name: "Send", exact: true }).first().click();
  await cy.page.getByText("Thanks for the feedback.").waitFor();

  // Regenerate: the first answer stays, marked, and a new one streams in.
  await cy.page.getByRole("button", { name: `Answer message ${seq} again` }).click();
  await cy.page.locator(".msg.kind-assistant", { hasText: "A better answer." }).waitFor();
  await cy.page.locator(`.msg.superseded[data-seq="${seq}"]`).waitFor();
  assert.equal(await first.locator(".flags").textContent(), "(earlier answer)");
  assert.equal(await first.getByRole("button", { name: /Answer message .* again/ }).count(), 0);
  const second = cy.page.locator(".msg.kind-assistant", { hasText: "A better answer." });
  const secondSeq = await second.getAttribute("data-seq");
  assert.equal(await cy.page.getByRole("button", { name: `Answer message ${secondSeq} again` }).count(), 1);

  // An admin sees the rating and its reason (once replicated).
  const sessionId = await cy.page.evaluate(async () => {
    const token = localStorage.getItem("confab.token");
    const r = await fetch("/v1/sessions", { headers: { authorization: `Bearer ${token}` } });
    return (await r.json()).sessions[0].id;
  });
  const admin = await page();
  await signIn(admin.page, "/admin", "Dee", "admin");
  let feedback = [];
  for (let i = 0; i < 100 && !feedback.some((f) => f.reason); i++) {
    feedback = await admin.page.evaluate(async (id) => {
      const token = localStorage.getItem("confab.token");
      const r = await fetch(`/v1/admin/sessions/${id}`, { headers: { authorization: `Bearer ${token}` } });
      return (await r.json()).feedback ?? [];
    }, sessionId);
    if (!feedback.some((f) => f.reason)) await admin.page.waitForTimeout(100);
  }
  assert.deepEqual(feedback.map((f) => [f.seq, f.rating, f.reason]), [[Number(seq), "down", "It skipped the refund window"]]);
  // The console's live view of the session lists it.
  await admin.page.getByLabel("Owner").fill(feedback[0].user_id);
  await admin.page.getByRole("button", { name: "Apply" }).click();
  await admin.page.getByRole("button", { name: "Open session Feedback" }).click();
  await admin.page.getByText(`Reply #${seq}: 👎 from ${feedback[0].user_id} — It skipped the refund window`).waitFor();
});

test("an agent approves the assistant's call in the console while the user sees it wait", async () => {
  const admin = await page();
  await signIn(admin.page, "/admin", "Ola", "admin");
  // A profile whose one function, ending the conversation, needs approval.
  const put = await admin.page.evaluate(async () => {
    const token = localStorage.getItem("confab.token");
    const r = await fetch("/v1/admin/profiles/careful", {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ chain: [{ provider: "openai" }], tools: [{ builtin: "end_conversation", needs_approval: true }, { builtin: "escalate_to_human" }] }),
    });
    return r.status;
  });
  assert.equal(put, 201);
  const user = await page();
  await signIn(user.page, "/", "Pia");
  await startConversation(user.page, "Approvals", "Pia Example", "pia@example.com");
  const owner = await user.page.evaluate(async () => {
    const token = localStorage.getItem("confab.token");
    const r = await fetch("/v1/sessions", { headers: { authorization: `Bearer ${token}` } });
    return (await r.json()).sessions[0].owner_id;
  });

  // The agent opens it in the console and switches it to that profile.
  await admin.page.getByLabel("Owner").fill(owner);
  await admin.page.getByRole("button", { name: "Apply" }).click();
  await admin.page.getByRole("button", { name: "Open session Approvals" }).click();
  await admin.page.locator("#status[data-state=online]").waitFor();
  await admin.page.getByLabel("Assistant profile").fill("careful");
  await admin.page.getByRole("button", { name: "Switch profile" }).click();
  await admin.page.getByText("Ola switched the assistant to the profile careful.").waitFor();

  await fetch(`${llm}/_standin/script`, {
    method: "POST",
    body: JSON.stringify({ model: "standin-1", steps: [{ tool_calls: [{ name: "end_conversation", arguments: {} }] }, { text: "Glad I could help. Goodbye!" }] }),
  });
  await user.page.getByRole("textbox", { name: "Message", exact: true }).fill("That is all, thanks");
  await user.page.keyboard.press("Enter");

  // The user is told the assistant waits for a person; the agent sees the call.
  await user.page.locator("#awaiting:not([hidden])").waitFor();
  assert.equal(await user.page.locator("#awaiting").textContent(), "The assistant is waiting for a person to approve its next step…");
  const request = admin.page.locator("#approvals li", { hasText: "end_conversation" });
  await request.waitFor();
  assert.match(await request.textContent(), /^The assistant wants to call end_conversation \{\} \(until /);
  await admin.page.screenshot({ path: path.join(artifacts, "approval-console.png") });
  await user.page.screenshot({ path: path.join(artifacts, "approval-waiting.png") });
  await admin.page.getByRole("button", { name: "Approve end_conversation" }).click();

  // Approved: the request goes, the call is made (the session is resolved)
  // and the assistant says goodbye; the user's waiting note goes too.
  await request.waitFor({ state: "detached" });
  // The call and its result are messages of their own kinds in the
  // console's transcript; the call's says who approved it.
  const call = admin.page.locator("#transcript li.tool_call", { hasText: "end_conversation {}" });
  await call.locator(".flags", { hasText: "(approved by Ola)" }).waitFor();
  assert.equal(await call.locator(".kind").textContent(), "function call");
  await admin.page.locator("#transcript li.tool_result", { hasText: "end_conversation answered: The conversation is ended" }).waitFor();
  await user.page.locator(".msg.kind-assistant", { hasText: "Glad I could help. Goodbye!" }).waitFor();
  await user.page.locator("#awaiting[hidden]").waitFor({ state: "attached" });
  await user.page.getByText("This conversation was marked resolved. Write again to reopen it.").waitFor();
  assert.equal(await user.page.locator("#transcript").getByText("end_conversation").count(), 0, "users are not shown the call");
  // Opened again, the console shows them from the session's record, in
  // order: the question, the call (approved), its result, the answer.
  await admin.page.getByRole("button", { name: "Open session Approvals" }).click();
  await admin.page.locator("#transcript li.tool_call .flags", { hasText: "(approved)" }).waitFor();
  await admin.page.locator("#transcript li", { hasText: "Glad I could help. Goodbye!" }).waitFor();
  const order = await admin.page.locator("#transcript li.msg").evaluateAll((lis) => lis.map((li) => li.classList[li.classList.contains("tool") ? 2 : 1]));
  assert.deepEqual(order.slice(-4), ["kind-user", "tool_call", "tool_result", "kind-assistant"]);
  // The reply that only asked for the call left no empty bubble behind.
  assert.equal(await user.page.locator("#transcript li.kind-assistant").count(), 1);
  assert.equal(await user.page.locator("#transcript li.streaming").count(), 0);

  // Calls made while the console was offline are listed once it is back.
  await admin.context.setOffline(true);
  await admin.page.locator("#status[data-state=offline]").waitFor();
  await fetch(`${llm}/_standin/script`, {
    method: "POST",
    body: JSON.stringify({ model: "standin-1", steps: [{ tool_calls: [{ name: "escalate_to_human", arguments: {} }] }, { text: "A person will take it from here." }] }),
  });
  await user.page.getByRole("textbox", { name: "Message", exact: true }).fill("Actually, one more thing");
  await user.page.keyboard.press("Enter");
  await user.page.locator(".msg.kind-assistant", { hasText: "A person will take it from here." }).waitFor();
  await admin.context.setOffline(false);
  await admin.page.locator("#status[data-state=online]").waitFor();
  await admin.page.locator("#transcript li.tool_call", { hasText: "escalate_to_human {}" }).waitFor();
  await admin.page.locator("#transcript li.tool_result", { hasText: "escalate_to_human answered" }).waitFor();
  assert.deepEqual(admin.errors, []);
  assert.deepEqual(user.errors, []);
});
