// The chat page: sign in, pick or start a conversation, chat live.
import { ConfabClient } from "/confab.js";
import { freshToken, signIn, signOut } from "/signin.js";
import { Transcript } from "/transcript.js";
import { h } from "/dom.js";

const $ = (id) => document.getElementById(id);
const root = $("root");
// The page's own nodes wait aside while the sign-in form is shown.
const layout = [...root.childNodes];

const me = await signIn(root);
root.replaceChildren(...layout);
$("whoami").textContent = `Signed in as ${me.name}`;
$("signout").hidden = false;
$("signout").addEventListener("click", signOut);

const client = new ConfabClient({ getToken: freshToken });
let chat = null;
let openId = null;

async function loadSessions() {
  const { sessions } = await client.listSessions({ limit: 50 });
  const list = $("session-list");
  list.replaceChildren(
    ...sessions.map((s) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "session-link";
      b.textContent = s.title || `Conversation ${s.id.slice(0, 6)}`;
      b.dataset.id = s.id;
      b.setAttribute("aria-current", s.id === openId ? "true" : "false");
      b.addEventListener("click", () => open(s.id, b.textContent));
      li.append(b);
      return li;
    }),
  );
  return sessions;
}

// Search: each result names its conversation and shows the words around
// the match, the matched words in <mark>, every piece as text.
$("search-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const q = f.q.value.trim();
  const list = $("search-results");
  const error = f.querySelector(".error");
  error.hidden = true;
  if (!q) {
    list.hidden = true;
    return;
  }
  try {
    const { results } = await client.search(q, { limit: 20 });
    list.replaceChildren(
      ...results.map((r) => {
        const title = r.session_title || `Conversation ${r.session_id.slice(0, 6)}`;
        const b = h("button", { type: "button", class: "search-hit" },
          h("span", { class: "search-where" }, `${title} · ${r.author.name}`),
          h("span", { class: "search-snippet" },
            ...r.snippet.map((p) => (p.hit ? h("mark", {}, p.text) : p.text))));
        b.addEventListener("click", () => {
          if (r.session_id !== openId) open(r.session_id, title);
          showMessage(r.seq);
        });
        return h("li", {}, b);
      }),
    );
    if (!results.length) list.replaceChildren(h("li", { class: "hint" }, "No messages found."));
    list.hidden = false;
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
});

// Scrolls to a message and marks it for a moment, once the transcript
// has it (a conversation just opened is still loading).
function showMessage(seq, tries = 50) {
  const li = document.querySelector(`#transcript [data-seq="${Number(seq)}"]`);
  if (li) {
    li.scrollIntoView({ block: "center" });
    li.classList.add("found");
    setTimeout(() => li.classList.remove("found"), 3000);
  } else if (tries > 0) {
    setTimeout(() => showMessage(seq, tries - 1), 100);
  }
}

$("new-session-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const contact = f.contact_name.value.trim() || f.contact_email.value.trim()
    ? { name: f.contact_name.value.trim(), email: f.contact_email.value.trim() }
    : undefined;
  try {
    const s = await client.createSession({ title: f.title.value.trim() || undefined, contact });
    f.reset();
    $("new-session").open = false;
    await loadSessions();
    open(s.id, s.title || `Conversation ${s.id.slice(0, 6)}`);
  } catch (err) {
    const p = f.querySelector(".error");
    p.textContent = err.message;
    p.hidden = false;
  }
});

function statusText({ state, queued }) {
  const q = queued ? `, ${queued} queued` : "";
  return { online: `Online${q}`, connecting: "Connecting…", reconnecting: `Reconnecting…${q}`,
    offline: `Offline${q}`, closed: `Disconnected${q}`, idle: "Not connected" }[state] ?? state;
}

const typingUsers = new Map();
function renderTyping() {
  const now = Date.now();
  const names = [...typingUsers].filter(([, t]) => now - t.at < 4000).map(([, t]) => t.name);
  $("typing").textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
}
setInterval(renderTyping, 1000);

function open(id, title) {
  chat?.close();
  openId = id;
  for (const b of document.querySelectorAll(".session-link")) b.setAttribute("aria-current", String(b.dataset.id === id));
  $("chat-title").textContent = title;
  $("composer").hidden = false;
  const transcript = new Transcript($("transcript"), {
    me,
    onReact: (seq, emoji, action) => chat.react(seq, emoji, action),
    onEdit: (seq, text) => {
      const next = prompt("Edit message", text);
      if (next && next.trim() && next !== text) chat.edit(seq, next.trim());
    },
    onDelete: (seq) => confirm("Delete this message?") && chat.delete(seq),
    onReply: (seq, text) => replyTo(seq, text),
    onVote: (seq, choices) => chat.vote(seq, choices),
    onReport: (seq, reason) => client.report(id, seq, reason),
    onBlock: (author) => block(author, transcript),
    onRate: (seq, rating, reason) => chat.rate(seq, rating, reason),
    onRegenerate: () => chat.regenerate(),
    preview: linkPreview,
    link: (attachmentId) => client.attachmentLink(id, attachmentId).then((l) => l.url, () => null),
  });
  replyTo(null);
  transcript.clear();
  chat = client.session(id);
  const presence = new Map();
  const on = (type, fn) => chat.addEventListener(type, (e) => fn(e.detail));
  on("status", (s) => {
    $("status").textContent = statusText(s);
    $("status").dataset.state = s.state;
    // Not queued (confab.js): usable only while online.
    $("escalate").disabled = $("stop").disabled = s.state !== "online";
  });
  on("hello", (h) => {
    renderDesk(h);
    presence.clear();
    for (const p of h.present) presence.set(p.user.id, p);
    for (const r of h.reads) transcript.receipt({ user: { id: r.user_id, name: r.user_id }, seq: r.seq });
    renderPresence();
  });
  transcript.follow(chat);
  on("message", (m) => {
    typingUsers.delete(m.author.id);
    renderTyping();
    // A function call's message comes mid-turn: the reply still runs.
    if (m.author.kind === "assistant" && !m.kind) $("stop").hidden = true;
    if (document.visibilityState === "visible") chat.read(m.seq);
  });
  on("turn", () => ($("stop").hidden = false));
  // The assistant waits for an agent to approve a call (what the call is,
  // users are not shown).
  const awaiting = new Set();
  const renderAwaiting = () => ($("awaiting").hidden = awaiting.size === 0);
  renderAwaiting();
  on("awaiting_approval", (f) => { awaiting.add(f.call_id); renderAwaiting(); });
  on("approval", (f) => { awaiting.delete(f.call_id); renderAwaiting(); });
  // A (re)connected socket is told again what still waits, after `hello`.
  on("hello", () => { awaiting.clear(); renderAwaiting(); });
  on("receipt", (f) => transcript.receipt(f));
  on("typing", (f) => { typingUsers.set(f.user.id, { name: f.user.name, at: Date.now() }); renderTyping(); });
  on("presence", (p) => {
    if (p.devices > 0) presence.set(p.user.id, { user: p.user, devices: p.devices });
    else presence.delete(p.user.id);
    renderPresence();
  });
  // The support desk: who is answering, and "Talk to a person".
  let deskStatus = null;
  function renderDesk({ status, assignee }) {
    const was = deskStatus;
    deskStatus = status;
    const text = {
      waiting: "Waiting for a person to join…",
      assigned: assignee ? `${assignee.name} (support agent) has joined the conversation.` : "A support agent is handling this conversation.",
      resolved: "This conversation was marked resolved. Write again to reopen it.",
      closed: "This conversation is closed. Start a new one to write again.",
      // Only worth saying when a person was involved before.
      open: was && was !== "open" ? "The assistant is answering again." : "",
    }[status] ?? "";
    $("mode").textContent = text;
    $("escalate").hidden = !(status === "open" || status === "resolved");
    $("composer").hidden = status === "closed";
  }
  on("desk", renderDesk);
  on("error", (e) => {
    if (e.code === "rate_limited") $("typing").textContent = "Slow down a little…";
    // A poll, vote or attachment the server refused says why (textContent: no markup).
    // So does a moderator's mute or ban.
    const said = ["invalid_poll", "invalid_choice", "poll_closed", "invalid_attachment", "attachment_not_found", "muted", "banned",
      "nothing_to_regenerate", "assistant_busy", "not_rateable"];
    if (said.includes(e.code)) composerError(e.message);
  });
  // 4003 follows `access_revoked` or `banned`; the error said which.
  // Mentioned elsewhere: say by whom and what (as text), with a way there.
  on("mention", (f) => {
    const note = $("mention-note");
    note.querySelector("span").textContent = `${f.by.name} mentioned you in another conversation: “${f.text}” `;
    note.querySelector("button").onclick = () => {
      note.hidden = true;
      const link = [...document.querySelectorAll(".session-link")].find((b) => b.dataset.id === f.session);
      open(f.session, link?.textContent || "Conversation");
      showMessage(f.seq);
    };
    note.hidden = false;
  });
  const endings = { 4003: "You no longer have access to this conversation.", 4004: "This conversation was deleted." };
  on("closed", (c) => ($("status").textContent = endings[c.code] ?? "Disconnected."));
  function renderPresence() {
    const others = [...presence.values()].filter((p) => p.user.id !== me.id).map((p) => p.user.name);
    const mine = presence.get(me.id)?.devices ?? 0;
    $("presence").textContent = [others.length ? `Here: ${others.join(", ")}` : "", mine > 1 ? `You are here on ${mine} devices` : ""].filter(Boolean).join(" · ");
  }
  // The latest page from history, then live from there on.
  client.history(id, { limit: 50 }).then((page) => {
    if (openId !== id) return;
    for (const m of page.messages) transcript.message(m);
    chat.lastSeq = page.last_seq ?? transcript.lastSeq;
    // The changes made since the page was read come after the new messages.
    chat.lastChange = page.last_change ?? 0;
    chat.connect();
  }, () => chat.connect());
  $("composer-text").focus();
}

// Link previews, fetched by the server once per link (and cached there);
// after a 404 (LINK_PREVIEWS is off) the page stops asking.
const previews = new Map();
let previewsOff = false;
function linkPreview(url) {
  if (previewsOff) return Promise.resolve(null);
  if (!previews.has(url)) {
    previews.set(url, client.linkPreview(url).catch((e) => {
      if (e.status === 404) previewsOff = true;
      return null;
    }));
  }
  return previews.get(url);
}

// The message the next send replies to (null: none), shown above the box.
let replyingTo = null;
function replyTo(seq, text = "") {
  replyingTo = seq;
  $("replying").hidden = seq == null;
  // textContent: the quoted text never becomes markup.
  $("replying-text").textContent = seq == null ? "" : `Replying to: ${text.slice(0, 80)}`;
  if (seq != null) $("composer-text").focus();
}
$("cancel-reply").addEventListener("click", () => replyTo(null));

// The poll the next send asks, when "Ask as a poll" is open (the server
// checks the options: 2 to 10, distinct).
function pollAsked() {
  if (!$("poll").open) return undefined;
  const options = $("poll-options").value.split("\n").map((o) => o.trim()).filter(Boolean);
  const minutes = Number($("poll-minutes").value);
  return {
    options,
    multiple: $("poll-multiple").checked,
    anonymous: $("poll-anonymous").checked,
    closesAt: minutes > 0 ? Date.now() + minutes * 60_000 : undefined,
  };
}

// Attachments: uploaded as soon as they are picked, sent with the next
// message. Large images are downsized here first (see downsize).
let attached = [];
function showAttached() {
  $("attached").replaceChildren(...attached.map((a) => {
    const li = document.createElement("li");
    li.textContent = a.name; // textContent: a file name never becomes markup
    return li;
  }));
}
$("attach-file").addEventListener("change", async (e) => {
  const files = [...e.target.files];
  e.target.value = "";
  for (const file of files) {
    try {
      const blob = await downsize(file);
      attached.push(await client.upload(openId, blob, { name: file.name }));
      showAttached();
    } catch (err) {
      composerError(err.message || "the file could not be uploaded");
    }
  }
});

// The longest side an image is sent with. The server does not resize
// (no image codec in the worker, which has a size budget, and the local
// runtime has no Images binding), so the browser does it before upload.
const MAX_SIDE = 1600;
async function downsize(file) {
  if (!/^image\/(png|jpeg|webp)$/.test(file.type)) return file;
  const bitmap = await createImageBitmap(file).catch(() => null);
  if (!bitmap || Math.max(bitmap.width, bitmap.height) <= MAX_SIDE) return file;
  const scale = MAX_SIDE / Math.max(bitmap.width, bitmap.height);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob((b) => resolve(b ?? file), file.type, 0.9));
}

// Blocks someone everywhere (the server hides their messages from now on)
// and takes theirs off this page; Undo unblocks and reloads the page of
// history, where they show again. Names are text only.
let lastBlocked = null;
async function block(author, transcript) {
  const note = $("blocked-note");
  try {
    await client.block(author.id, { session: openId });
  } catch (e) {
    composerError(`Could not block ${author.name}: ${e.message}`);
    return;
  }
  transcript.hideAuthor(author.id);
  lastBlocked = author;
  note.querySelector("span").textContent = `You blocked ${author.name}. You will not see their messages. `;
  note.hidden = false;
}
$("blocked-note").querySelector("button").addEventListener("click", async () => {
  if (!lastBlocked) return;
  await client.unblock(lastBlocked.id, { session: openId });
  lastBlocked = null;
  $("blocked-note").hidden = true;
  if (openId) open(openId, $("chat-title").textContent);
});

function composerError(message) {
  $("composer-error").textContent = message;
  $("composer-error").hidden = false;
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const t = $("composer-text");
  const text = t.value.trim();
  if ((!text && !attached.length) || !chat) return;
  $("composer-error").hidden = true;
  const attachments = attached.map((a) => a.id);
  chat.send(text, { replyTo: replyingTo ?? undefined, poll: pollAsked(), attachments });
  attached = [];
  showAttached();
  replyTo(null);
  t.value = "";
  $("poll").open = false;
  $("poll-options").value = "";
});
$("composer-text").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("composer").requestSubmit();
  } else if (chat?.state === "online") {
    chat.typing();
  }
});
$("stop").addEventListener("click", () => chat?.stop());
$("escalate").addEventListener("click", () => chat?.escalate());

const sessions = await loadSessions();
const wanted = new URLSearchParams(location.search).get("session");
const first = sessions.find((s) => s.id === wanted);
if (first) open(first.id, first.title || `Conversation ${first.id.slice(0, 6)}`);
