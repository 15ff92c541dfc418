// Renders a session's transcript from the socket's frames into an <ol>.
// Shared by the chat page and the admin console. Text is always set with
// textContent: message text never becomes markup.
import { h } from "/dom.js";

const REACTIONS = ["👍", "❤️", "😂"];
// The reasons the server takes for a report or removal, in words.
const REASONS = { spam: "Spam", harassment: "Harassment", abuse: "Hateful or abusive", other: "Something else" };

export class Transcript {
  /**
   * @param {HTMLOListElement} list
   * @param {{me: {id: string}, onEdit?: Function, onDelete?: Function, onReact?: Function,
   *          onReply?: Function, onVote?: Function, onReport?: Function, onRemove?: Function,
   *          onBlock?: Function, preview?: Function,
   *          link?: Function}} options
   *   `onReport(seq, reason)` reports someone else's message and resolves
   *   when the report is filed (a message offers Report only with it).
   *   `onRemove(seq)`, for moderators, removes any message.
   *   `onBlock(author)` blocks another person (a user or an agent).
   *   `onRate(seq, rating, reason?)` rates an assistant reply ("up",
   *   "down", "none"); `onRegenerate()` answers the last question again
   *   (offered on the newest reply only).
   *   `preview(url)` resolves to a link's preview (or null): a card is shown
   *   under a message for its first link. `link(attachmentId)` resolves to
   *   a short-lived download URL: images are shown, other files linked.
   */
  constructor(list, { me, onEdit, onDelete, onReact, onReply, onVote, onReport, onRemove, onBlock, onRate, onRegenerate, preview, link }) {
    this.list = list;
    this.me = me;
    this.onEdit = onEdit;
    this.onDelete = onDelete;
    this.onReact = onReact;
    this.onReply = onReply;
    this.onVote = onVote;
    this.onReport = onReport;
    this.onRemove = onRemove;
    this.onBlock = onBlock;
    this.onRate = onRate;
    this.onRegenerate = onRegenerate;
    this.preview = preview;
    this.link = link;
    this.bySeq = new Map();
    this.reads = new Map(); // user id → {name, seq}
  }

  /** Renders the message frames of `session` (a ConfabSession); read
   *  receipts are left to the page, which decides whether to show them. */
  follow(session) {
    const on = (type, fn) => session.addEventListener(type, (e) => fn.call(this, e.detail));
    on("message", this.message);
    on("turn", this.turn);
    on("delta", this.delta);
    on("edited", this.edited);
    on("deleted", this.deleted);
    on("reaction", this.reaction);
    on("poll", this.tally);
    on("rated", this.rated);
    on("superseded", this.superseded);
    on("approval", this.approval);
  }

  /** A call that waited for a person was decided: its message says so. */
  approval(f) {
    const li = this.list.querySelector(`li.tool_call[data-call="${CSS.escape(f.call_id)}"]`);
    if (li) li.querySelector(".flags").textContent = `(${f.decision.replace("_", " ")}${f.by ? ` by ${f.by.name}` : ""})`;
  }

  /** A message of the assistant's function calls (`kind` tool_call or
   *  tool_result): one line, without actions. As text: the arguments
   *  come from the model and the results from the product's backend. */
  #tool(li, m) {
    const call = m.kind === "tool_call";
    li.className = `msg tool ${m.kind}`;
    li.dataset.call = call ? m.call.id : m.result.call_id;
    li.querySelector(".author").textContent = m.author.name;
    li.querySelector(".kind").textContent = call ? "function call" : "function result";
    const decided = call && m.call.decision ? `(${m.call.decision.replace("_", " ")})` : "";
    li.querySelector(".flags").textContent = m.unreadable ? "(cannot be read)" : decided;
    li.querySelector(".text").textContent = call
      ? `${m.call.name} ${JSON.stringify(m.call.arguments)}`
      : `${m.result.name} ${m.result.is_error ? "failed" : "answered"}: ${m.result.content}`;
  }

  /** Your rating of a reply (from any of your devices). */
  rated(f) {
    const li = this.bySeq.get(f.seq);
    if (!li) return;
    li.dataset.rating = f.rating;
    for (const b of li.querySelectorAll("button[data-rating]")) {
      b.setAttribute("aria-pressed", String(b.dataset.rating === f.rating));
    }
  }

  /** A reply answered again: kept, marked, no longer rated or regenerated. */
  superseded(f) {
    const li = this.bySeq.get(f.seq);
    if (!li) return;
    li.classList.add("superseded");
    li.querySelector(".flags").textContent = "(earlier answer)";
    for (const b of li.querySelectorAll("button[data-rating], button.regenerate")) b.remove();
  }

  clear() {
    this.list.replaceChildren();
    this.bySeq.clear();
    this.reads.clear();
  }

  #item(id) {
    let li = this.list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
    if (!li) {
      li = h("li", {},
        h("div", { class: "meta" }, h("span", { class: "author" }), h("span", { class: "kind" }), h("span", { class: "flags" })),
        h("p", { class: "text" }), h("div", { class: "files" }), h("div", { class: "reactions" }),
        h("div", { class: "actions" }));
      li.dataset.id = id;
      this.list.append(li);
    }
    return li;
  }

  /** A stored message (live, replayed or from history). */
  message(m) {
    const li = this.#item(m.id);
    li.dataset.seq = m.seq;
    if (m.kind === "tool_call" || m.kind === "tool_result") {
      this.bySeq.set(m.seq, li);
      this.#tool(li, m);
      this.#order(li);
      return li.scrollIntoView?.({ block: "end" });
    }
    li.dataset.author = m.author.id;
    const mentionsMe = (m.mentions ?? []).some((u) => u.id === this.me.id);
    li.className = `msg kind-${m.author.kind}${this.#mine(m) ? " mine" : ""}${mentionsMe ? " mentions-me" : ""}`;
    li.querySelector(".author").textContent = m.author.name;
    li.querySelector(".kind").textContent = m.author.kind === "user" ? "" : m.author.kind;
    this.bySeq.set(m.seq, li);
    this.#text(li, m);
    this.#linkCard(li, m.deleted ? "" : m.text);
    this.#files(li, m.deleted ? [] : m.attachments ?? []);
    this.#reactions(li, m.reactions ?? []);
    this.#poll(li, m.poll);
    this.#actions(li, m);
    this.#thread(li, m);
    this.#order(li);
    li.scrollIntoView?.({ block: "end" });
  }

  /** The assistant started replying: an empty, streaming bubble. One
   *  reply streams at a time, so an earlier bubble that never said
   *  anything (a reply that only called functions, or failed before its
   *  first word) will get no message: it goes. */
  turn(f) {
    for (const old of this.list.querySelectorAll("li.streaming")) {
      if (old.dataset.id !== f.message_id && !old.querySelector(".text").textContent) old.remove();
    }
    const li = this.#item(f.message_id);
    li.className = "msg kind-assistant streaming";
    li.querySelector(".author").textContent = f.author.name;
    li.querySelector(".kind").textContent = "assistant";
    li.querySelector(".text").textContent = f.text;
    li.setAttribute("aria-busy", "true");
  }

  delta(f) {
    const li = this.#item(f.message_id);
    li.querySelector(".text").textContent += f.text;
    li.scrollIntoView?.({ block: "end" });
  }

  edited(f) {
    const li = this.bySeq.get(f.seq);
    if (!li) return;
    li.querySelector(".text").textContent = f.text;
    li.querySelector(".flags").textContent = "(edited)";
    this.#linkCard(li, f.text);
  }

  deleted(f) {
    const li = this.bySeq.get(f.seq);
    if (!li) return;
    this.#text(li, { deleted: true, removed: f.removed });
    this.#linkCard(li, "");
    this.#files(li, []);
    li.querySelector(".actions").replaceChildren();
    li.querySelector(".reactions").replaceChildren();
    this.#poll(li, null);
  }

  /** A card for the first http(s) link in `text`: title, description and
   *  site, all as text; the link opens the page the server previewed. */
  #linkCard(li, text) {
    const url = this.preview && text.match(/https?:\/\/[^\s<>"']+/)?.[0];
    if (li.dataset.link === (url || "")) return;
    li.dataset.link = url || "";
    li.querySelector(".link-card")?.remove();
    if (!url) return;
    this.preview(url).then((p) => {
      if (!p || li.dataset.link !== url || !(p.title || p.description)) return;
      const a = h("a", { class: "link-card", rel: "noopener noreferrer nofollow ugc", target: "_blank" },
        h("strong", {}, p.title ?? ""), h("span", { class: "description" }, p.description ?? ""),
        h("span", { class: "site" }, p.site_name ?? new URL(p.url).host));
      // Only http(s): the server checked it, and a page never links anything else.
      if (/^https?:\/\//.test(p.url)) a.href = p.url;
      li.querySelector(".text").after(a);
    });
  }

  /** A message's files: an image inline (its size reserved from the
   *  attachment's width and height), anything else as a download link
   *  named by its file name (text only). URLs come from `link`. */
  #files(li, files) {
    const box = li.querySelector(".files");
    const ids = files.map((f) => f.id).join(",");
    if (box.dataset.ids === ids) return;
    box.dataset.ids = ids;
    box.replaceChildren();
    for (const f of files) {
      const el = f.type.startsWith("image/")
        ? h("img", { class: "file-image", alt: f.name, loading: "lazy" })
        : h("a", { class: "file-link", download: f.name }, `${f.name} (${Math.ceil(f.size / 1024)} KiB)`);
      if (el.tagName === "IMG" && f.width && f.height) {
        el.width = Math.min(f.width, 320);
        el.height = Math.round((el.width * f.height) / f.width);
      }
      box.append(el);
      this.link?.(f.id).then((url) => {
        // A path on Confab's own origin, signed by the server.
        if (!url || !/^https?:\/\//.test(url)) return;
        if (el.tagName === "IMG") el.src = url;
        else el.href = url;
      });
    }
  }

  /** A poll's tally changed; the ballot stays as it was unless the frame
   *  carries this user's (`mine`). */
  tally(f) {
    const li = this.bySeq.get(f.seq);
    if (!li?.dataset.poll) return;
    const poll = JSON.parse(li.dataset.poll);
    poll.tally = { ...f.tally, mine: f.tally.mine ?? poll.tally.mine };
    this.#poll(li, poll);
  }

  /** The poll under its question: one button per option with its votes
   *  (pressed: this user's choice); a click sends the new ballot. */
  #poll(li, poll) {
    li.querySelector(".poll")?.remove();
    if (!poll) return void delete li.dataset.poll;
    li.dataset.poll = JSON.stringify(poll);
    const { tally } = poll;
    const mine = tally.mine ?? [];
    const box = h("div", { class: "poll", role: "group", "aria-label": `Poll: ${poll.options.length} options` });
    poll.options.forEach((option, i) => {
      const b = h("button", { type: "button", class: "option", "aria-pressed": String(mine.includes(i)) },
        h("span", { class: "label" }, option), h("span", { class: "count" }, String(tally.counts[i] ?? 0)));
      if (tally.users) b.title = tally.users[i].join(", ");
      b.disabled = tally.closed || !this.onVote;
      b.addEventListener("click", () => {
        const choices = poll.multiple
          ? (mine.includes(i) ? mine.filter((c) => c !== i) : [...mine, i].sort((x, y) => x - y))
          : (mine.includes(i) ? [] : [i]);
        this.onVote(Number(li.dataset.seq), choices);
      });
      box.append(b);
    });
    const kind = [poll.multiple ? "several choices" : "one choice", poll.anonymous ? "anonymous" : ""];
    const note = h("p", { class: "poll-note" });
    note.textContent = [
      `${tally.voters} ${tally.voters === 1 ? "voter" : "voters"}`,
      ...kind.filter(Boolean),
      tally.closed ? "closed" : poll.closes_at ? `closes ${new Date(poll.closes_at).toLocaleString()}` : "",
    ].filter(Boolean).join(" · ");
    box.append(note);
    li.querySelector(".text").after(box);
  }

  reaction(f) {
    const li = this.bySeq.get(f.seq);
    if (!li) return;
    const current = JSON.parse(li.dataset.reactions ?? "[]");
    let r = current.find((x) => x.emoji === f.emoji);
    if (!r) current.push((r = { emoji: f.emoji, users: [] }));
    r.users = r.users.filter((u) => u !== f.user.id);
    if (f.action === "add") r.users.push(f.user.id);
    this.#reactions(li, current.filter((x) => x.users.length));
  }

  receipt(f) {
    this.reads.set(f.user.id, { name: f.user.name, seq: f.seq });
    this.#renderReads();
  }

  #renderReads() {
    for (const el of this.list.querySelectorAll(".seen")) el.remove();
    const bySeq = new Map();
    for (const [id, r] of this.reads) {
      if (id === this.me.id) continue;
      const seqs = [...this.bySeq.keys()].filter((s) => s <= r.seq);
      if (!seqs.length) continue;
      const at = Math.max(...seqs);
      bySeq.set(at, [...(bySeq.get(at) ?? []), r.name]);
    }
    for (const [seq, names] of bySeq) {
      const p = document.createElement("p");
      p.className = "seen";
      p.textContent = `Seen by ${names.join(", ")}`;
      this.bySeq.get(seq)?.append(p);
    }
  }

  #text(li, m) {
    const p = li.querySelector(".text");
    li.classList.remove("streaming");
    li.removeAttribute("aria-busy");
    if (m.deleted) {
      li.classList.add("deleted");
      // A moderator's name comes from their token: text only.
      p.textContent = m.removed
        ? `Removed by ${m.removed.by.name} (${REASONS[m.removed.reason] ?? m.removed.reason}).`
        : "This message was deleted.";
      li.classList.toggle("removed", Boolean(m.removed));
      li.querySelector(".flags").textContent = "";
      return;
    }
    p.textContent = m.text;
    li.querySelector(".flags").textContent = [
      m.edited_at ? "(edited)" : "",
      m.turn?.incomplete ? "(incomplete)" : "",
      m.unreadable ? "(unreadable)" : "",
    ].join(" ").trim();
  }

  #reactions(li, reactions) {
    li.dataset.reactions = JSON.stringify(reactions);
    const box = li.querySelector(".reactions");
    box.replaceChildren(
      ...reactions.map((r) => {
        const s = document.createElement("span");
        s.className = "reaction";
        s.textContent = `${r.emoji} ${r.users.length}`;
        s.title = r.users.join(", ");
        return s;
      }),
    );
  }

  #actions(li, m) {
    const box = li.querySelector(".actions");
    box.replaceChildren();
    // Only the newest message may be answered again: a newer one takes
    // Regenerate away from the reply before it.
    if (m.seq >= this.lastSeq) for (const old of this.list.querySelectorAll("button.regenerate")) old.remove();
    if (m.deleted) return;
    const button = (label, text, onClick) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "small";
      b.textContent = text;
      b.setAttribute("aria-label", label);
      b.addEventListener("click", onClick);
      box.append(b);
    };
    if (this.onReply) button(`Reply to message ${m.seq}`, "Reply", () => this.onReply(m.seq, li.querySelector(".text").textContent));
    if (this.onReact) {
      for (const e of REACTIONS) {
        button(`React ${e} to message ${m.seq}`, e, () => {
          const mine = JSON.parse(li.dataset.reactions ?? "[]").find((r) => r.emoji === e)?.users.includes(this.me.id);
          this.onReact(m.seq, e, mine ? "remove" : "add");
        });
      }
    }
    if (this.#mine(m)) {
      if (this.onEdit) button(`Edit message ${m.seq}`, "Edit", () => this.onEdit(m.seq, li.querySelector(".text").textContent));
      if (this.onDelete) button(`Delete message ${m.seq}`, "Delete", () => this.onDelete(m.seq));
    } else if (this.onReport) {
      button(`Report message ${m.seq}`, "Report", () => this.#reportForm(li, m.seq));
    }
    const person = m.author.kind === "user" || m.author.kind === "agent";
    if (this.onBlock && person && !this.#mine(m)) {
      button(`Block ${m.author.name}`, "Block", () => this.onBlock(m.author));
    }
    if (this.onRemove) button(`Remove message ${m.seq}`, "Remove", () => this.onRemove(m.seq));
    if (m.author.kind === "assistant" && !m.superseded) this.#feedback(li, m, button);
    if (m.superseded) this.superseded(m);
  }

  /** Thumbs for an assistant reply (a down asks why, optionally), and
   *  Regenerate on the newest one. */
  #feedback(li, m, button) {
    if (this.onRate) {
      for (const [rating, text, label] of [["up", "👍", "Good answer"], ["down", "👎", "Bad answer"]]) {
        button(`${label}: rate message ${m.seq} ${rating}`, text, () => {
          const again = li.dataset.rating === rating;
          this.onRate(m.seq, again ? "none" : rating);
          if (rating === "down" && !again) this.#whyForm(li, m.seq);
        });
        const b = li.querySelector(".actions").lastElementChild;
        b.dataset.rating = rating;
        b.setAttribute("aria-pressed", String(li.dataset.rating === rating));
      }
    }
    if (this.onRegenerate && m.seq === this.lastSeq) {
      button(`Answer message ${m.seq} again`, "Regenerate", () => this.onRegenerate());
      li.querySelector(".actions").lastElementChild.classList.add("regenerate");
    }
  }

  /** After a thumbs-down: an optional reason, sent as the rating again. */
  #whyForm(li, seq) {
    if (li.querySelector(".why")) return;
    const input = h("input", { "aria-label": `What was wrong with message ${seq} (optional)`, maxlength: "500" });
    const send = h("button", { type: "submit", class: "small" }, "Send");
    const form = h("form", { class: "why report" }, input, send);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (input.value.trim()) this.onRate(seq, "down", input.value.trim());
      form.replaceChildren(h("span", { class: "usage", role: "status" }, "Thanks for the feedback."));
    });
    li.querySelector(".actions").after(form);
    input.focus();
  }

  /** Takes a blocked person's messages off the page (the server sends
   *  no more of them). */
  hideAuthor(id) {
    for (const li of this.list.querySelectorAll("li[data-author]")) {
      if (li.dataset.author === id) {
        this.bySeq.delete(Number(li.dataset.seq));
        li.remove();
      }
    }
  }

  /** Asks why, then reports: a reason from the server's closed set. */
  #reportForm(li, seq) {
    if (li.querySelector(".report")) return;
    const select = h("select", { "aria-label": `Why report message ${seq}` },
      ...Object.entries(REASONS).map(([value, label]) => h("option", { value }, label)));
    const note = h("span", { class: "usage", role: "status" });
    const send = h("button", { type: "submit", class: "small" }, "Send report");
    const cancel = h("button", { type: "button", class: "small secondary" }, "Cancel");
    const form = h("form", { class: "report" }, select, send, cancel, note);
    cancel.addEventListener("click", () => form.remove());
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      send.disabled = true;
      try {
        await this.onReport(seq, select.value);
        form.replaceChildren(h("span", { class: "usage", role: "status" }, "Reported. A moderator will look at it."));
      } catch (err) {
        note.textContent = `Could not report it: ${err.message}`;
        send.disabled = false;
      }
    });
    li.querySelector(".actions").after(form);
    select.focus();
  }

  /** Written by this user: the same id, and a kind a token can have (a user
   *  whose id is "assistant" did not write the assistant's replies). */
  #mine(m) {
    return m.author.id === this.me.id && (m.author.kind === "user" || m.author.kind === "agent");
  }

  /** A reply goes under its parent, in the parent's list of replies; a
   *  reply whose parent is not shown (an older page) stays in the main
   *  list, marked as a reply. */
  #thread(li, m) {
    const parent = m.reply_to ? this.bySeq.get(m.reply_to) : null;
    if (!parent || parent === li) {
      if (m.reply_to) li.querySelector(".flags").prepend(`↪ reply to #${m.reply_to} `);
      return;
    }
    let replies = parent.querySelector(":scope > ol.replies");
    if (!replies) {
      replies = h("ol", { class: "replies", "aria-label": `Replies to message ${m.reply_to}` });
      parent.append(replies);
    }
    if (li.parentElement !== replies) replies.append(li);
  }

  /** Keeps items in seq order within their list (a history page may arrive
   *  after live ones). */
  #order(li) {
    const seq = Number(li.dataset.seq);
    const list = li.parentElement ?? this.list;
    let next = null;
    for (const other of list.children) {
      const s = Number(other.dataset.seq);
      if (other !== li && s && s > seq && (!next || s < Number(next.dataset.seq))) next = other;
    }
    if (next && li.nextSibling !== next) list.insertBefore(li, next);
  }

  get lastSeq() {
    return Math.max(0, ...this.bySeq.keys());
  }
}
