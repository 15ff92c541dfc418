// The widget's panel: the page /widget.js frames on a product's site
// (docs/client.md, "The widget"). It runs on Confab's origin, so the host
// page never reaches the transcript or a token; the two speak only through
// postMessage, with the parent's origin checked against the deployment's
// allowlist.
//
// Who chats: a signed-in user of the product (the host's `getToken`, asked
// through the parent each time a token runs low) or a visitor
// (`POST /v1/visitors`, remembered in this origin's storage so a returning
// visitor finds their conversation).
import { ConfabClient, ConfabError } from "/confab.js";
import { Transcript } from "/transcript.js";
import { hasTimeLeft, identity, originAllowed } from "/signin.js";
import { h } from "/dom.js";

const STRINGS = {
  title: "Chat with us",
  close: "Close",
  human: "Talk to a person",
  waiting: "Waiting for a person to join…",
  approving: "The assistant is waiting for a person to approve its next step…",
  joined: "{name} joined the conversation",
  typing: "{name} is typing…",
  name: "Your name",
  email: "Your e-mail",
  start: "Start chatting",
  placeholder: "Write a message…",
  send: "Send",
  offline: "Offline: {n} waiting to be sent",
  reconnecting: "Reconnecting…",
  ended: "This conversation has ended.",
  forbidden: "This chat can only be opened from the site it belongs to.",
};
const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (_, k) => vars[k] ?? "");
const STORE = "confab.widget";
const root = document.getElementById("root");

// 1. Who framed us. The parent says its origin in our URL; it must be on
// the allowlist and, where the browser can tell, be our actual parent.
const parentOrigin = new URLSearchParams(location.hash.slice(1)).get("parent");
const config = await fetch("/v1/client-config").then((r) => r.json()).catch(() => ({}));
const actual = location.ancestorOrigins?.[0];
if (window.parent === window || !parentOrigin ||
    !originAllowed(parentOrigin, [location.origin, ...(config.embed_origins ?? [])]) ||
    (actual && actual !== parentOrigin)) {
  root.replaceChildren(h("p", { class: "error", role: "alert" }, STRINGS.forbidden));
  root.removeAttribute("aria-busy");
  throw new Error("Confab widget: not framed by an allowed page");
}
const toParent = (m) => window.parent.postMessage(m, parentOrigin);

// 2. The parent's messages: settings, visibility, tokens.
let visible = false;
// The conversation, once there is one, and its unread count (section 6).
let session = null;
let seen = 0;
let unread = 0;
const tokenWaiters = [];
const init = await new Promise((resolve) => {
  addEventListener("message", (e) => {
    if (e.source !== window.parent || e.origin !== parentOrigin) return;
    const m = e.data ?? {};
    if (m.type === "confab:init") resolve(m);
    else if (m.type === "confab:open") onVisible(true);
    else if (m.type === "confab:hidden") onVisible(false);
    else if (m.type === "confab:token") for (const wake of tokenWaiters.splice(0)) wake(m.token);
  });
  toParent({ type: "confab:ready" });
});
const opts = init.options ?? {};
const t = { ...STRINGS, ...(opts.strings ?? {}) };

// 3. Storage: this origin's own. A browser that blocks third-party
// storage denies it to this frame; then the launcher keeps a copy in the
// host page's storage (docs/client.md, "Where the panel keeps its
// state"): it arrives with confab:init and each change goes back to it.
function ownStorage() {
  try {
    localStorage.setItem(`${STORE}.probe`, "1");
    return localStorage;
  } catch {
    return null;
  }
}
function hostStorage(initial) {
  const map = new Map(Object.entries(initial ?? {}));
  return {
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem(k, v) {
      map.set(k, String(v));
      toParent({ type: "confab:store", key: k, value: String(v) });
    },
    removeItem(k) {
      map.delete(k);
      toParent({ type: "confab:store", key: k, value: null });
    },
  };
}
const storage = ownStorage() ?? hostStorage(init.stored);

// 4. Tokens: the host's, or this visitor's.
const load = (k) => JSON.parse(storage?.getItem(`${STORE}.${k}`) ?? "null");
const save = (k, v) => storage?.setItem(`${STORE}.${k}`, JSON.stringify(v));
let me = null; // {token, id, name}
let visitor = init.signedIn ? null : load("visitor");

const fresh = (who) => !!who && hasTimeLeft(who.token);

async function hostToken() {
  const next = new Promise((wake) => tokenWaiters.push(wake));
  toParent({ type: "confab:token-request" });
  const token = await Promise.race([next, new Promise((r) => setTimeout(() => r(null), 5000))]);
  const who = token && identity(token);
  // A token for someone else never switches users mid-page.
  if (!who || (me && who.id !== me.id)) throw new Error("the host page gave no token");
  return who;
}

/** A visitor identity: the remembered one renewed, else a new one. */
async function visitorToken(name, turnstileToken) {
  const body = visitor ? { visitor: visitor.credential, name: visitor.name } : { name, turnstile_token: turnstileToken };
  const res = await fetch("/v1/visitors", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  const out = await res.json().catch(() => ({}));
  if (res.status === 401 && visitor) {
    // Too old or from another key: start over as a new visitor.
    visitor = null;
    return visitorToken(name, turnstileToken);
  }
  if (!res.ok) throw new ConfabError(res.status, out.error?.code, out.error?.message, out.error?.request_id);
  visitor = { credential: out.visitor, name: out.name, id: out.user_id };
  save("visitor", visitor);
  // The page may tell its backend, to link the conversation once the
  // visitor signs in (docs/api.md); the id is no credential.
  toParent({ type: "confab:visitor", id: out.user_id });
  return identity(out.token);
}

async function getToken() {
  if (fresh(me)) return me.token;
  me = init.signedIn ? await hostToken() : await visitorToken(visitor?.name);
  return me.token;
}

const client = new ConfabClient({ getToken, storage });

// 5. The panel.
const status = h("p", { class: "status", role: "status" });
const body = h("div", { class: "body" });
const announce = h("div", { class: "sr-only", "aria-live": "polite" });
const humanButton = h("button", { type: "button", hidden: true }, t.human);
const closeButton = h("button", { type: "button", "aria-label": t.close }, "✕");
closeButton.addEventListener("click", () => toParent({ type: "confab:close" }));
root.replaceChildren(
  h("header", {}, h("h1", {}, opts.title ?? t.title), humanButton, closeButton),
  body, status, announce);
root.removeAttribute("aria-busy");
if (/^#[0-9a-f]{3,8}$/i.test(opts.color ?? "")) document.documentElement.style.setProperty("--confab-color", opts.color);

// Escape closes; Tab stays inside the open panel (the host page behind it
// is not reachable by keyboard until it closes).
addEventListener("keydown", (e) => {
  if (e.key === "Escape") return toParent({ type: "confab:close" });
  if (e.key !== "Tab") return;
  const focusable = [...root.querySelectorAll("button, input, textarea, a[href]")].filter((el) => !el.disabled && el.offsetParent);
  if (!focusable.length) return;
  const [first, last] = [focusable[0], focusable[focusable.length - 1]];
  if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
  else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
});

function focusInput() {
  (root.querySelector("textarea, input") ?? closeButton).focus();
}

// Unread: messages from others newer than the last one seen with the panel
// open (kept in storage, so it holds across page navigations).
function onVisible(v) {
  visible = v;
  if (v) {
    markSeen();
    focusInput();
  }
}
function markSeen() {
  if (!session) return;
  seen = Math.max(seen, session.lastSeq);
  save(`seen.${session.id}`, seen);
  if (unread) toParent({ type: "confab:unread", count: (unread = 0) });
  if (session.state === "online" && seen) session.read(seen);
}

// 6. Before a conversation: the pre-chat form.
function prechat() {
  const fields = opts.fields ?? ["name", "email"];
  const required = new Set(opts.require ?? ["name"]);
  const form = h("form", { class: "prechat", novalidate: true },
    opts.greeting ? h("p", { class: "greeting" }, opts.greeting) : null,
    ...fields.filter((f) => f === "name" || f === "email").flatMap((f) => [
      h("label", { for: `f-${f}` }, t[f] + (required.has(f) ? " *" : "")),
      h("input", { id: `f-${f}`, name: f, type: f === "email" ? "email" : "text", maxlength: f === "name" ? 100 : 254,
        autocomplete: f, required: required.has(f), value: f === "name" ? visitor?.name ?? me?.name ?? "" : "" }),
    ]),
    config.turnstile_site_key && !init.signedIn && !visitor ? h("div", { class: "turnstile" }) : null,
    h("p", { class: "error", role: "alert", hidden: true }),
    h("button", { type: "submit", class: "primary" }, t.start));
  body.replaceChildren(form);
  const turnstile = form.querySelector(".turnstile");
  let answer = "";
  if (turnstile) {
    // Cloudflare's challenge script; the server checks its answer.
    const s = h("script", { src: "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit" });
    s.addEventListener("load", () => window.turnstile.render(turnstile, {
      sitekey: config.turnstile_site_key, callback: (a) => (answer = a),
    }));
    document.head.append(s);
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = form.querySelector(".error");
    const value = (f) => form.elements[f]?.value.trim() || undefined;
    const missing = [...required].find((f) => fields.includes(f) && !value(f));
    if (missing) {
      error.textContent = `${t[missing]}: required`;
      error.hidden = false;
      return form.elements[missing].focus();
    }
    form.querySelector("button").disabled = true;
    try {
      if (!init.signedIn && !fresh(me)) me = await visitorToken(value("name"), answer);
      const contact = value("name") || value("email") ? { name: value("name") ?? me?.name, email: value("email") } : undefined;
      const { id } = await client.createSession({ title: opts.title ?? t.title, contact });
      save(`session.${me.id}`, id);
      chat(id);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      form.querySelector("button").disabled = false;
    }
  });
}

// 7. The conversation.
function chat(id) {
  toParent({ type: "confab:active", active: true });
  const list = h("ol", { class: "transcript" });
  const typing = h("p", { class: "typing", "aria-hidden": "true" });
  body.replaceChildren(opts.greeting ? h("p", { class: "greeting" }, opts.greeting) : "", list);
  const text = h("textarea", { id: "composer-text", "aria-label": t.placeholder, placeholder: t.placeholder, maxlength: 4000 });
  const composer = h("form", { class: "composer" }, text, h("button", { type: "submit", class: "primary" }, t.send));
  root.insertBefore(typing, status);
  root.insertBefore(composer, status);
  session = client.session(id, { outboxKey: `${STORE}.outbox.${id}` });
  seen = Number(load(`seen.${id}`) ?? 0);
  // Visitors rate replies and ask for another answer, as on the chat page.
  const transcript = new Transcript(list, {
    me,
    onRate: (seq, rating, reason) => session.rate(seq, rating, reason),
    onRegenerate: () => session.regenerate(),
  });
  transcript.follow(session);
  const on = (type, fn) => session.addEventListener(type, (e) => fn(e.detail));
  const joined = new Set();
  let typingTimer = null;
  on("message", (m) => {
    // The assistant's function calls (shown when its profile says so) are
    // not words to announce or count as unread.
    if (m.author.id === me.id || m.kind) return;
    announce.textContent = `${m.author.name}: ${m.text}`;
    if (visible) return markSeen();
    if (m.seq > seen) toParent({ type: "confab:unread", count: ++unread });
  });
  on("typing", (f) => {
    if (f.user?.id === me.id) return;
    typing.textContent = fill(t.typing, { name: f.user?.name ?? "" });
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => (typing.textContent = ""), 4000);
  });
  const desk = (f) => {
    humanButton.hidden = !["open", "resolved"].includes(f.status);
    const waiting = f.status === "waiting";
    list.querySelector(".notice.waiting")?.remove();
    if (waiting) list.append(h("li", { class: "notice waiting" }, t.waiting));
    const agent = f.status === "assigned" ? f.assignee : null;
    if (agent && !joined.has(agent.id)) {
      joined.add(agent.id);
      const line = fill(t.joined, { name: agent.name });
      list.append(h("li", { class: "notice joined" }, line));
      announce.textContent = line;
    }
  };
  on("hello", desk);
  on("desk", desk);
  // The assistant waits for an agent to approve a call (what the call is,
  // visitors are not shown); told again after each `hello`.
  const approving = new Set();
  const showApproving = () => {
    list.querySelector(".notice.approving")?.remove();
    if (approving.size) list.append(h("li", { class: "notice approving", role: "status" }, t.approving));
  };
  on("hello", () => { approving.clear(); showApproving(); });
  on("awaiting_approval", (f) => { approving.add(f.call_id); showApproving(); });
  on("approval", (f) => { approving.delete(f.call_id); showApproving(); });
  on("status", ({ state, queued }) => {
    status.textContent = state === "offline" || (queued && state !== "online")
      ? fill(t.offline, { n: queued ?? 0 })
      : state === "reconnecting" ? t.reconnecting : state === "closed" ? t.ended : "";
    if (state === "online" && visible) markSeen();
  });
  humanButton.addEventListener("click", () => session.escalate());
  composer.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = text.value.trim();
    if (!value) return;
    session.send(value);
    text.value = "";
  });
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      composer.requestSubmit();
    } else session.typing();
  });
  session.connect();
  if (visible) focusInput();
}

// Start: a remembered conversation goes on; otherwise the form.
try {
  if (init.signedIn || visitor) await getToken();
  const known = me && load(`session.${me.id}`);
  if (known) chat(known);
  else if (opts.prechat === "off" && (init.signedIn || config.visitors)) {
    await getToken();
    const { id } = await client.createSession({ title: opts.title ?? t.title });
    save(`session.${me.id}`, id);
    chat(id);
  } else prechat();
} catch (err) {
  body.replaceChildren(h("p", { class: "error", role: "alert" }, err.message));
}
