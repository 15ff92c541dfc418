// The admin console, an inbox: the queue of sessions waiting for a person
// (longest wait first, live over the desk's inbox socket, with Claim), the
// moderation queue (reported messages: remove, dismiss, mute or ban the
// author), the assistant's usage over time (a chart of its cost, or of its
// tokens where no model is priced), every session filtered and sorted (rows update live), and a
// live view of any of them where an agent claims, replies, resolves, hands
// back or removes a message.
import { ConfabClient } from "/confab.js";
import { freshToken, signIn, signOut } from "/signin.js";
import { Transcript } from "/transcript.js";
import { h } from "/dom.js";
import { barChart } from "/chart.js";

const $ = (id) => document.getElementById(id);
const root = $("root");
// The console's own nodes wait aside while the sign-in form is shown.
const layout = [...root.childNodes];

const me = await signIn(root, { wantRole: "admin" });
root.replaceChildren(...layout);
$("whoami").textContent = `Signed in as ${me.name}`;
$("signout").hidden = false;
$("signout").addEventListener("click", signOut);
const client = new ConfabClient({ getToken: freshToken });
// Declared before the console starts, which runs before the module's end.
let spendAsked = 0;

// Not an admin: say so and stop here (no exception: nothing went wrong).
if (!me.roles.includes("admin")) {
  root.replaceChildren(
    h("section", { class: "card", role: "alert" }, h("h1", {}, "Admins only"), h("p", {}, `${me.name} does not hold the admin role.`)),
  );
} else {
  startConsole();
}

/** The console proper, for admins. */
function startConsole() {
  let cursor = null;
  const fmt = (ms) => new Date(ms).toLocaleString();
  const clock = (ms) => new Date(ms).toLocaleTimeString();

  // Loads overlap (the first page, then Apply before it answered): only the
  // newest may fill the table, or a slower, older answer would show rows the
  // filters no longer ask for. The table is aria-busy while one is pending.
  let newest = 0;
  async function load(fromStart) {
    const mine = ++newest;
    $("rows").setAttribute("aria-busy", "true");
    try {
      await fill(fromStart, () => mine === newest);
    } finally {
      if (mine === newest) $("rows").setAttribute("aria-busy", "false");
    }
  }

  // The newest inbox item of each session, and when it came. D1's listing
  // trails the session objects (replication runs up to
  // REPLICATION_INTERVAL_MS behind), so a listing can be older than what
  // the inbox already said: the inbox wins until the listing catches up.
  const latest = new Map();
  const LISTING_LAG_MS = 10_000;
  function remember(item) {
    latest.delete(item.session);
    latest.set(item.session, { item, got: Date.now() });
    if (latest.size > 2000) latest.delete(latest.keys().next().value);
  }
  // The inbox's item about listing row `s`, if newer than the row.
  function newer(s) {
    const l = latest.get(s.id);
    return l && l.item.at > (s.updated_at ?? 0) ? l.item : null;
  }

  // The table's rows by session id, so inbox items update them in place.
  const rows = new Map();
  async function fill(fromStart, current) {
    const from = fromStart ? null : cursor;
    const page = await client.adminSessions({ ...filters(), limit: 25, cursor: from ?? undefined });
    if (!current()) return;
    rows.clear();
    $("rows").replaceChildren(...page.sessions.map(row));
    for (const s of page.sessions) {
      const item = newer(s);
      if (item) applyToTable(item, false);
    }
    cursor = page.next_cursor;
    $("next").disabled = !cursor;
  }

  const filters = () => Object.fromEntries([...new FormData($("filters"))].filter(([, v]) => v !== ""));
  // Who has the session and its times, in words.
  const desk = (s) => [
    s.assignee ? s.assignee.name : null,
    s.waiting_since ? `waiting since ${clock(s.waiting_since)}` : null,
    s.first_agent_reply_at ? `first reply ${clock(s.first_agent_reply_at)}` : null,
    s.resolved_at ? `resolved ${clock(s.resolved_at)}` : null,
  ].filter(Boolean).join(" · ");

  function row(s) {
    const cell = (text) => h("td", {}, String(text));
    const cells = {
      mode: cell(s.mode + (s.human_assisted ? " · assisted" : "")),
      status: cell(s.status),
      desk: cell(desk(s)),
      messages: cell(s.message_count ?? 0),
      updated: cell(fmt(s.updated_at)),
    };
    const openButton = h("button", { type: "button", class: "small", "aria-label": `Open session ${s.title || s.id}` }, "Open");
    openButton.addEventListener("click", () => open(s));
    const tr = h("tr", { "data-session": s.id }, cell(s.title || s.id.slice(0, 10)), cell(s.owner_id), cells.mode, cells.status,
      cells.desk, cells.messages, cell(s.tokens ?? 0), cells.updated, h("td", {}, openButton));
    rows.set(s.id, { tr, cells, s });
    return tr;
  }

  // An inbox item: the session's row, if shown, takes its new state; a new
  // session joins the top of an unfiltered, newest-first table.
  // `live`: just now from the inbox (not a replay over a listing, which
  // may or may not count the message already).
  function applyToTable(item, live = true) {
    const shown = rows.get(item.session);
    if (item.event === "deleted") {
      shown?.tr.remove();
      rows.delete(item.session);
      return;
    }
    if (shown) {
      const s = Object.assign(shown.s, pick(item), { updated_at: item.at });
      s.mode = s.status === "assigned" ? "human" : "assistant";
      if (live && item.event === "message") s.message_count = (s.message_count ?? 0) + 1;
      shown.cells.mode.textContent = s.mode + (s.human_assisted ? " · assisted" : "");
      shown.cells.status.textContent = s.status;
      shown.cells.desk.textContent = desk(s);
      shown.cells.messages.textContent = String(s.message_count);
      shown.cells.updated.textContent = fmt(s.updated_at);
      return;
    }
    const f = filters();
    const newestFirst = (f.sort ?? "updated") === "updated" && (f.order ?? "desc") === "desc";
    const admitted = Object.keys(f).every((k) => ["sort", "order"].includes(k) || (k === "status" && f.status === item.status));
    if (live && item.event === "created" && newestFirst && admitted) {
      $("rows").prepend(row({ id: item.session, owner_id: item.owner_id, mode: "assistant", ...pick(item), created_at: item.at, updated_at: item.at }));
    }
  }
  const pick = ({ status, assignee, waiting_since, first_agent_reply_at, resolved_at }) =>
    ({ status, assignee, waiting_since, first_agent_reply_at, resolved_at });

  // The waiting queue, longest wait first: loaded from the listing on each
  // (re)connect of the inbox, then kept by its items. What the inbox said
  // lately wins over the listing (see `latest`): a session it saw leave
  // the queue stays out, one it saw join stays in.
  const queue = new Map();
  async function loadQueue() {
    const since = Date.now() - LISTING_LAG_MS;
    const page = await client.adminSessions({ status: "waiting", sort: "waiting", order: "asc", limit: 100 });
    queue.clear();
    for (const s of page.sessions) {
      const item = newer(s);
      if (item && item.status !== "waiting") continue;
      queue.set(s.id, { session: s.id, title: s.title, owner_id: s.owner_id, waiting_since: s.waiting_since, preview: null });
    }
    for (const { item, got } of latest.values()) {
      if (got >= since && !queue.has(item.session)) upsertQueued(item);
    }
    renderQueue();
  }
  function upsertQueued(item) {
    const had = queue.get(item.session);
    if (item.status !== "waiting" || item.event === "deleted") return queue.delete(item.session);
    queue.set(item.session, { ...had, ...item, title: had?.title ?? rows.get(item.session)?.s.title, preview: item.preview ?? had?.preview ?? null });
    // Items carry no title (it lives in D1, sealed): a session new to
    // the queue fetches its own once.
    if (!had && !queue.get(item.session).title) fetchTitle(item.session);
  }
  async function fetchTitle(id) {
    try {
      const { session } = await client.adminSession(id);
      const w = queue.get(id);
      if (w && session.title) { w.title = session.title; renderQueue(); }
    } catch { /* the session's id stands in for its title */ }
  }
  function applyToQueue(item) {
    upsertQueued(item);
    renderQueue();
  }
  function renderQueue() {
    const waiting = [...queue.values()].sort((a, b) => (a.waiting_since ?? 0) - (b.waiting_since ?? 0));
    $("queue-empty").hidden = waiting.length > 0;
    $("queue").replaceChildren(...waiting.map((w) => {
      const name = w.title || w.session.slice(0, 10);
      const claim = h("button", { type: "button", class: "small", "aria-label": `Claim session ${name}` }, "Claim");
      claim.addEventListener("click", () => claimFromQueue(w, name));
      return h("li", { "data-session": w.session },
        h("span", {}, `${name} · ${w.owner_id} · waiting since ${clock(w.waiting_since)}`),
        claim,
        w.preview ? h("span", { class: "preview" }, `${w.preview.author.name}: ${w.preview.text}`) : null);
    }));
  }
  async function claimFromQueue(w, name) {
    $("queue-note").textContent = "";
    try {
      await client.adminDesk(w.session, "claim");
    } catch (e) {
      $("queue-note").textContent = e.code === "already_assigned" ? `${name} was taken by another agent.` : `Could not claim ${name}: ${e.code}.`;
      return;
    }
    open({ id: w.session, title: w.title, status: "assigned", assignee: { id: me.id, name: me.name } });
  }

  const inbox = client.inbox();
  let connects = 0;
  inbox.addEventListener("status", (e) => ($("inbox-state").textContent = e.detail.state === "online" ? "live" : e.detail.state));
  inbox.addEventListener("ready", () => {
    loadQueue().catch((e) => ($("queue-note").textContent = `Could not load the queue: ${e.code ?? "offline"}.`));
    // Items are not replayed: after a reconnect the table reloads too.
    if (connects++ > 0) load(true);
  });
  inbox.addEventListener("inbox", (e) => {
    remember(e.detail);
    applyToQueue(e.detail);
    applyToTable(e.detail);
  });
  inbox.connect();

  // The moderation queue: each reported message with its reasons, read
  // through history (admins may read any session), and what to do.
  async function loadReports() {
    $("reports").setAttribute("aria-busy", "true");
    try {
      const { items } = await client.moderationQueue({ limit: 50 });
      const shown = await Promise.all(items.map(reportItem));
      $("reports").replaceChildren(...shown);
      $("reports-empty").hidden = items.length > 0;
      // The filter's decisions: what it matched, as text.
      const { decisions } = await client.filterLog({ limit: 20 });
      $("filter-log").replaceChildren(...decisions.map((d) => h("li", { "data-session": d.session_id },
        `${clock(d.at)} · ${d.action} (${d.source}: ${d.detail || "?"}) · ${d.user_id}` +
        (d.seq ? ` · message ${d.seq}` : ""))));
      if (!decisions.length) $("filter-log").replaceChildren(h("li", { class: "usage" }, "None yet."));
    } catch (e) {
      $("reports-note").textContent = `Could not load the reports: ${e.code ?? "offline"}.`;
    } finally {
      $("reports").setAttribute("aria-busy", "false");
    }
  }
  async function reportItem(item) {
    const page = await client.history(item.session_id, { before: item.seq + 1, limit: 1 }).catch(() => null);
    const m = page?.messages.find((x) => x.seq === item.seq);
    const top = item.reasons[0]?.reason ?? "other";
    const reasons = item.reasons.map((r) => `${r.reason} ${r.count}`).join(", ") + (item.by_filter ? " (flagged by the filter)" : "");
    const act = (label, text, fn, cls = "small") => {
      const b = h("button", { type: "button", class: cls, "aria-label": `${label} (message ${item.seq})` }, text);
      b.addEventListener("click", async () => {
        $("reports-note").textContent = "";
        try {
          await fn();
        } catch (e) {
          $("reports-note").textContent = `${label} failed: ${e.code}.`;
        }
        loadReports();
      });
      return b;
    };
    const author = m ? `${m.author.name} (${item.author_id})` : item.author_id;
    return h("li", { "data-session": item.session_id, "data-seq": String(item.seq) },
      h("span", { class: "report-text" }, m ? (m.deleted ? "(deleted)" : m.text) : "(message unavailable)"),
      h("span", { class: "usage" }, ` — ${author} · ${item.reports} report(s): ${reasons} · since ${clock(item.first_reported_at)}`),
      act("Remove", "Remove", () => client.removeMessage(item.session_id, item.seq, top)),
      act("Dismiss", "Dismiss", () => client.dismissReports(item.session_id, item.seq), "small secondary"),
      act("Mute the author for an hour", "Mute 1 h",
        () => client.sanction(item.session_id, { userId: item.author_id, kind: "mute", durationSecs: 3600, reason: top }), "small secondary"),
      act("Ban the author from the session", "Ban",
        () => client.sanction(item.session_id, { userId: item.author_id, kind: "ban", reason: top }), "small secondary"),
      act("Ban the author from every session", "Ban everywhere",
        () => client.sanctionEverywhere({ userId: item.author_id, kind: "ban", reason: top }), "small secondary"));
  }
  $("reports-refresh").addEventListener("click", loadReports);
  loadReports();

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(true); });
  // Search over every session (admins): each hit names its session and
  // shows the words around the match, matches in <mark>, all as text.
  $("search-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target;
    const error = f.querySelector(".error");
    const list = $("search-results");
    error.hidden = true;
    try {
      const { results } = await client.search(f.q.value.trim(), { limit: 20 });
      list.replaceChildren(...results.map((r) => {
        const b = h("button", { type: "button", class: "search-hit" },
          h("span", { class: "search-where" }, `${r.session_title || r.session_id.slice(0, 10)} · ${r.author.name}`),
          h("span", { class: "search-snippet" }, ...r.snippet.map((p) => (p.hit ? h("mark", {}, p.text) : p.text))));
        b.addEventListener("click", async () => {
          const { session } = await client.adminSession(r.session_id);
          open(session);
        });
        return h("li", {}, b);
      }));
      if (!results.length) list.replaceChildren(h("li", { class: "usage" }, "No messages found."));
      list.hidden = false;
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });
  $("first").addEventListener("click", () => load(true));
  $("next").addEventListener("click", () => load(false));

  let chat = null;
  let shown = null; // the session in the live view
  async function showUsage(id) {
    const { usage, feedback } = await client.adminSession(id);
    // Another session opened while this answer was on its way.
    if (id !== shown) return;
    // Ratings as text (user ids and reasons come from users: no markup).
    const thumb = { up: "👍", down: "👎" };
    $("feedback").replaceChildren(...(feedback ?? []).map((f) =>
      h("li", { "data-seq": f.seq }, `Reply #${f.seq}: ${thumb[f.rating] ?? f.rating} from ${f.user_id}${f.reason ? ` — ${f.reason}` : ""}`)));
    const ms = (v) => (v == null ? "–" : `${Math.round(v)} ms`);
    const cost = usage.unpriced_turns === usage.turns ? "" : `, $${(usage.cost_usd ?? 0).toFixed(6)}`;
    $("usage").textContent = `Assistant: ${usage.turns ?? 0} replies, ${usage.tokens_in ?? 0} tokens in, ${usage.tokens_out ?? 0} out${cost}; ` +
      `first token avg ${ms(usage.ttft_ms?.avg)}, reply avg ${ms(usage.latency_ms?.avg)}`;
  }

  function open(s) {
    chat?.close();
    shown = s.id;
    $("live").hidden = false;
    $("live-title").textContent = s.title || `Session ${s.id.slice(0, 10)}`;
    renderDesk(s);
    const transcript = new Transcript($("transcript"), {
      me,
      link: (att) => client.attachmentLink(s.id, att).then((l) => l.url, () => null),
      // A moderator removes any message; the reason is asked in words.
      onRemove: (seq) => {
        const reason = prompt("Remove this message for everyone. Reason: spam, harassment, abuse or other", "abuse");
        if (!reason) return;
        client.removeMessage(s.id, seq, reason.trim().toLowerCase())
          .then(loadReports, (e) => ($("mode").textContent = `Could not remove it: ${e.message}`));
      },
    });
    transcript.clear();
    $("approvals").replaceChildren();
    showUsage(s.id);
    chat = client.session(s.id, { outboxKey: `confab.admin.outbox.${s.id}` });
    const on = (type, fn) => chat.addEventListener(type, (e) => fn(e.detail));
    on("status", (st) => {
      $("status").textContent = st.state;
      $("status").dataset.state = st.state;
      // Desk actions are not queued (confab.js): usable only while online.
      for (const b of [$("claim"), $("resolve"), $("release"), $("transfer").querySelector("button")]) {
        b.disabled = st.state !== "online";
      }
    });
    transcript.follow(chat);
    // The assistant's function calls are messages in the transcript
    // (`kind` tool_call and tool_result), replayed after a reconnect as any.
    on("message", (m) => m.author.kind === "assistant" && !m.kind && showUsage(s.id));
    on("hello", (hello) => {
      renderDesk(hello);
      showUsage(s.id);
      // What still waits comes again after `hello`.
      $("approvals").replaceChildren();
      $("profile-name").value = hello.profile ?? "default";
    });
    on("desk", renderDesk);
    on("profile", (f) => {
      $("profile-name").value = f.profile;
      $("mode").textContent = `${f.by.name} switched the assistant to the profile ${f.profile}.`;
    });
    // A call that needs approval: one line with its own buttons, gone once
    // decided (here, by another agent, or by the timeout).
    on("approval_request", ({ call, expires_at }) => {
      const approve = h("button", { type: "button", "aria-label": `Approve ${call.name}` }, "Approve");
      const reject = h("button", { type: "button", class: "secondary", "aria-label": `Reject ${call.name}` }, "Reject");
      approve.addEventListener("click", () => chat?.approve(call.id));
      reject.addEventListener("click", () => chat?.reject(call.id));
      const until = new Date(expires_at).toLocaleTimeString();
      $("approvals").append(h("li", { "data-call": call.id },
        `The assistant wants to call ${call.name} ${JSON.stringify(call.arguments)} (until ${until}) `, approve, " ", reject));
    });
    on("approval", (a) => {
      [...$("approvals").children].find((li) => li.dataset.call === a.call_id)?.remove();
    });
    on("error", (e) => {
      if (e.code === "already_assigned") $("mode").textContent = "Another agent has this session.";
      if (e.code === "session_closed") $("mode").textContent = "This session is closed.";
      if (e.code === "invalid_user_id") $("mode").textContent = "That is not a user id.";
      if (["unknown_profile", "invalid_profile", "unknown_call"].includes(e.code)) $("mode").textContent = e.message;
    });
    chat.connect();
    $("live").scrollIntoView({ block: "start" });
  }

  // The support desk's state of the open session (text only: names come
  // from tokens).
  function renderDesk({ status, assignee, waiting_since }) {
    const since = waiting_since ? ` since ${new Date(waiting_since).toLocaleTimeString()}` : "";
    $("mode").textContent = {
      open: "The assistant is answering.",
      waiting: `Waiting for a person${since}.`,
      assigned: assignee ? `Assigned to ${assignee.name}.` : "A human agent is answering.",
      resolved: "Resolved. The user's next message reopens it.",
      closed: "Closed (idle).",
    }[status] ?? status;
  }

  $("claim").addEventListener("click", () => chat?.claim());
  $("profile-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("profile-name").value.trim();
    if (name && chat) chat.setProfile(name);
  });
  $("resolve").addEventListener("click", () => chat?.resolve());
  $("release").addEventListener("click", () => chat?.release());
  $("transfer").addEventListener("submit", (e) => {
    e.preventDefault();
    const to = $("transfer-to").value.trim();
    if (to && chat) chat.transfer(to);
    $("transfer-to").value = "";
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("composer-text");
    if (t.value.trim() && chat) chat.send(t.value.trim());
    t.value = "";
  });

  load(true);
  loadSpend();
  $("spend-refresh").addEventListener("click", loadSpend);
  $("spend-days").addEventListener("change", loadSpend);
}

/** Every page of the usage report for `params`. */
async function usagePages(params) {
  const items = [];
  let cursor;
  do {
    const page = await client.adminUsage({ ...params, cursor });
    items.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return items;
}

// The usage panel: the last N UTC days, a bar a day (days without replies
// are bars of 0), and the period by model. Answers that arrive after a
// newer request are dropped, as the session table's are (`spendAsked`).
async function loadSpend() {
  const mine = ++spendAsked;
  const n = Number($("spend-days").value);
  const day = (offset) => new Date(Date.now() - offset * 86_400_000).toISOString().slice(0, 10);
  const days = Array.from({ length: n }, (_, i) => day(n - 1 - i));
  const range = { from: days[0], to: days[days.length - 1], limit: 366 };
  const [byDay, byModel] = await Promise.all([usagePages({ ...range, by: "day" }), usagePages({ ...range, by: "model" })]);
  if (mine !== spendAsked) return;
  const priced = byDay.some((d) => d.cost_usd > 0);
  const of = new Map(byDay.map((d) => [d.day, priced ? d.cost_usd : d.tokens_in + d.tokens_out]));
  const usd = (v) => `$${v.toFixed(v > 0 && v < 0.01 ? 6 : 2)}`;
  const format = priced ? usd : (v) => `${v} tokens`;
  const points = days.map((d) => ({ label: d.slice(5), value: of.get(d) ?? 0 }));
  $("spend-chart").replaceChildren(barChart(points, { title: priced ? "Assistant cost per day (USD)" : "Assistant tokens per day", format }));
  const sum = (k) => byDay.reduce((t, d) => t + d[k], 0);
  const unpriced = sum("unpriced_turns");
  $("spend-total").textContent = `${sum("turns")} replies, ${sum("tokens_in")} tokens in, ${sum("tokens_out")} out, ${usd(sum("cost_usd"))}` +
    (unpriced ? ` (${unpriced} replies of models without a price are not in the cost)` : "");
  const cell = (v) => h("td", {}, String(v));
  $("spend-models").replaceChildren(...byModel.map((m) =>
    h("tr", {}, cell(m.provider), cell(m.model), cell(m.turns), cell(m.tokens_in), cell(m.tokens_out),
      cell(m.unpriced_turns === m.turns ? "no price" : usd(m.cost_usd)))));
}
