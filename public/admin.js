// The admin console: every session, filtered and sorted, and a live view of
// any of them where an agent can take over and reply.
import { ConfabClient } from "/confab.js";
import { freshToken, signIn, signOut } from "/signin.js";
import { Transcript } from "/transcript.js";
import { h } from "/dom.js";

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

  async function fill(fromStart, current) {
    const from = fromStart ? null : cursor;
    const f = new FormData($("filters"));
    const params = Object.fromEntries([...f].filter(([, v]) => v !== ""));
    const page = await client.adminSessions({ ...params, limit: 25, cursor: from ?? undefined });
    if (!current()) return;
    $("rows").replaceChildren(
      ...page.sessions.map((s) => {
        const tr = document.createElement("tr");
        const cells = [s.title || s.id.slice(0, 10), s.owner_id, s.mode + (s.human_assisted ? " · assisted" : ""), s.status,
          s.message_count, s.tokens, fmt(s.updated_at)];
        for (const c of cells) {
          const td = document.createElement("td");
          td.textContent = c;
          tr.append(td);
        }
        const td = document.createElement("td");
        const b = document.createElement("button");
        b.type = "button";
        b.className = "small";
        b.textContent = "Open";
        b.setAttribute("aria-label", `Open session ${s.title || s.id}`);
        b.addEventListener("click", () => open(s));
        td.append(b);
        tr.append(td);
        return tr;
      }),
    );
    cursor = page.next_cursor;
    $("next").disabled = !cursor;
  }

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(true); });
  $("first").addEventListener("click", () => load(true));
  $("next").addEventListener("click", () => load(false));

  let chat = null;
  let shown = null; // the session in the live view
  async function showUsage(id) {
    const { usage } = await client.adminSession(id);
    // Another session opened while this answer was on its way.
    if (id !== shown) return;
    const ms = (v) => (v == null ? "–" : `${Math.round(v)} ms`);
    $("usage").textContent = `Assistant: ${usage.turns ?? 0} replies, ${usage.tokens_in ?? 0} tokens in, ${usage.tokens_out ?? 0} out; ` +
      `first token avg ${ms(usage.ttft_ms?.avg)}, reply avg ${ms(usage.latency_ms?.avg)}`;
  }

  function open(s) {
    chat?.close();
    shown = s.id;
    $("live").hidden = false;
    $("live-title").textContent = s.title || `Session ${s.id.slice(0, 10)}`;
    renderDesk(s);
    const transcript = new Transcript($("transcript"), { me });
    transcript.clear();
    showUsage(s.id);
    chat = client.session(s.id, { outboxKey: `confab.admin.outbox.${s.id}` });
    const on = (type, fn) => chat.addEventListener(type, (e) => fn(e.detail));
    on("status", (st) => { $("status").textContent = st.state; $("status").dataset.state = st.state; });
    transcript.follow(chat);
    on("message", (m) => m.author.kind === "assistant" && showUsage(s.id));
    on("hello", renderDesk);
    on("desk", renderDesk);
    on("error", (e) => {
      if (e.code === "already_assigned") $("mode").textContent = "Another agent has this session.";
      if (e.code === "session_closed") $("mode").textContent = "This session is closed.";
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
  $("resolve").addEventListener("click", () => chat?.resolve());
  $("release").addEventListener("click", () => chat?.release());
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("composer-text");
    if (t.value.trim() && chat) chat.send(t.value.trim());
    t.value = "";
  });

  load(true);
}
