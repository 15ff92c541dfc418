// Confab's browser client: an ES module with no dependencies.
//
//   import { ConfabClient } from "https://your-confab.example/confab.js";
//   const client = new ConfabClient({ getToken: async () => myApp.confabToken() });
//   const chat = client.session(sessionId);
//   chat.addEventListener("message", (e) => render(e.detail));
//   chat.addEventListener("status", (e) => showStatus(e.detail));
//   chat.connect();
//   chat.send("Hello");                 // queued offline, delivered exactly once
//   chat.edit(seq, "Hello!");           // so are edits, deletions, reactions and votes
//
// Full reference: docs/client.md. Types: confab.d.ts.

/** Close codes after which reconnecting cannot help (see docs/protocol.md):
 *  policy (1008), access revoked (4003), session deleted (4004). */
export const TERMINAL_CLOSE_CODES = new Set([1008, 4003, 4004]);
/** The token behind the socket expired (4001): reconnect at once with a
 *  fresh ticket (`getToken` is asked again) and resume where it stopped. */
export const RENEW_CLOSE_CODE = 4001;

/** Error codes after which a queued frame is sent again (with its client
 *  id) on the next connection; any other error that names a queued frame's
 *  client id refuses it for good, so it leaves the outbox. */
export const RETRYABLE_CODES = new Set(["rate_limited", "internal", "persist_failed", "unavailable"]);

/** An HTTP API failure: `status` and the API's stable `code`. */
export class ConfabError extends Error {
  constructor(status, code, message, requestId) {
    super(message || code);
    this.name = "ConfabError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

/** Exponential backoff with full jitter: a random wait in [0, min(cap, base·2^attempt)]. */
export function backoffMs(attempt, { baseMs = 500, capMs = 15000, random = Math.random } = {}) {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

/** A client id for a new message (the server's idempotency key). */
export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return "c-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The HTTP API, authenticated with the token `getToken` returns. */
export class ConfabClient {
  /**
   * @param {{baseUrl?: string, getToken: () => string | Promise<string>, storage?: Storage,
   *          WebSocket?: typeof WebSocket, fetch?: typeof fetch}} options
   */
  constructor({ baseUrl, getToken, storage, WebSocket: WS, fetch: f } = {}) {
    if (typeof getToken !== "function") throw new TypeError("getToken is required");
    this.baseUrl = (baseUrl ?? globalThis.location?.origin ?? "").replace(/\/$/, "");
    this.getToken = getToken;
    // `null` keeps nothing; a page the browser denies storage (a framed
    // page with third-party storage blocked) throws on reading
    // localStorage at all, and then keeps nothing either.
    this.storage = storage === undefined ? defaultStorage() : storage;
    this.WebSocket = WS ?? globalThis.WebSocket;
    this.fetch = f ?? globalThis.fetch.bind(globalThis);
  }

  /** Calls the API; resolves to the JSON body, rejects with ConfabError. */
  async api(method, path, body) {
    const headers = { authorization: `Bearer ${await this.getToken()}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    let res;
    try {
      res = await this.fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ConfabError(0, "network", String(e?.message ?? e));
    }
    if (res.status === 204) return null;
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const err = data?.error ?? {};
      throw new ConfabError(res.status, err.code ?? "http_" + res.status, err.message, err.request_id);
    }
    return data;
  }

  /** Messages holding every word of `q`, newest first (GET /v1/search). */
  search(q, { cursor, limit } = {}) {
    return this.api("GET", "/v1/search" + query({ q, cursor, limit }));
  }
  listSessions({ cursor, limit } = {}) {
    return this.api("GET", "/v1/sessions" + query({ cursor, limit }));
  }
  createSession({ title, contact, profile } = {}) {
    return this.api("POST", "/v1/sessions", {
      ...(title ? { title } : {}), ...(contact ? { contact } : {}), ...(profile ? { profile } : {}),
    });
  }
  getSession(id) {
    return this.api("GET", `/v1/sessions/${enc(id)}`);
  }
  deleteSession(id) {
    return this.api("DELETE", `/v1/sessions/${enc(id)}`);
  }
  /** A page of history; with `thread`, that message and its replies only. */
  history(id, { before, limit, thread } = {}) {
    return this.api("GET", `/v1/sessions/${enc(id)}/messages` + query({ before, limit, thread }));
  }
  addMember(id, userId) {
    return this.api("POST", `/v1/sessions/${enc(id)}/members`, { user_id: userId });
  }
  ticket(id) {
    return this.api("POST", `/v1/sessions/${enc(id)}/tickets`);
  }
  /** A link's preview ({url, title, description, image, site_name}),
   *  fetched by the server; rejects with 404 when previews are off. */
  linkPreview(url) {
    return this.api("GET", "/v1/previews" + query({ url }));
  }
  /** Uploads a file (a Blob or File, with `name` for a Blob) to a session:
   *  asks for a slot, PUTs the bytes, and resolves to the attachment
   *  ({id, name, type, size, width?, height?}) to name in `send`. */
  async upload(id, file, { name } = {}) {
    const slot = await this.api("POST", `/v1/sessions/${enc(id)}/attachments`, {
      name: name ?? file.name ?? "file",
      type: file.type,
      size: file.size,
    });
    let res;
    try {
      res = await this.fetch(this.baseUrl + slot.upload_url, {
        method: "PUT",
        headers: { "content-type": file.type },
        body: file,
      });
    } catch (e) {
      throw new ConfabError(0, "network", String(e?.message ?? e));
    }
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const err = data?.error ?? {};
      throw new ConfabError(res.status, err.code ?? "http_" + res.status, err.message, err.request_id);
    }
    return data;
  }
  /** A short-lived download link for an attachment: the attachment's fields
   *  and `url` (absolute; works without a token until `expires_at`). */
  async attachmentLink(id, attachmentId) {
    const link = await this.api("GET", `/v1/sessions/${enc(id)}/attachments/${enc(attachmentId)}`);
    return { ...link, url: this.baseUrl + link.url };
  }
  /** Admin only: every session, filtered and sorted (see docs/api.md). */
  adminSessions(params = {}) {
    return this.api("GET", "/v1/admin/sessions" + query(params));
  }
  adminSession(id) {
    return this.api("GET", `/v1/admin/sessions/${enc(id)}`);
  }
  /** Admin only: the cost ledger by day, user, profile or model (see docs/api.md). */
  adminUsage(params = {}) {
    return this.api("GET", "/v1/admin/usage" + query(params));
  }
  /** Admin only: a desk action on a session: `escalate`, `claim`,
   *  `transfer` (body `{to}`), `resolve`, `release` or `close`. */
  adminDesk(id, action, body) {
    return this.api("POST", `/v1/admin/sessions/${enc(id)}/${enc(action)}`, body);
  }
  /** The people you blocked. */
  blocks() {
    return this.api("GET", "/v1/me/blocks");
  }
  /** Blocks someone: their messages are hidden from you in every
   *  conversation you are in; in `session` (the one open) before this
   *  resolves, in the others just after. */
  block(userId, { session } = {}) {
    return this.api("PUT", `/v1/me/blocks/${enc(userId)}` + query({ session }));
  }
  unblock(userId, { session } = {}) {
    return this.api("DELETE", `/v1/me/blocks/${enc(userId)}` + query({ session }));
  }
  /** Reports someone else's message to the moderators. */
  report(id, seq, reason) {
    return this.api("POST", `/v1/sessions/${enc(id)}/reports`, { seq, reason });
  }
  /** Admin only: messages with open reports, longest waiting first. */
  moderationQueue({ cursor, limit } = {}) {
    return this.api("GET", "/v1/admin/reports" + query({ cursor, limit }));
  }
  /** Admin only: the pre-send filter's decisions, newest first. */
  filterLog({ cursor, limit } = {}) {
    return this.api("GET", "/v1/admin/filter" + query({ cursor, limit }));
  }
  /** Admin only: removes a message for everyone, closing its reports. */
  removeMessage(id, seq, reason) {
    return this.api("POST", `/v1/admin/sessions/${enc(id)}/remove`, { seq, reason });
  }
  /** Admin only: closes a message's reports, keeping it. */
  dismissReports(id, seq) {
    return this.api("POST", `/v1/admin/sessions/${enc(id)}/dismiss`, { seq });
  }
  /** Admin only: mutes or bans a user from a session (`durationSecs`
   *  absent: until lifted). */
  sanction(id, { userId, kind, durationSecs, reason }) {
    const body = { user_id: userId, kind, reason, ...(durationSecs ? { duration_secs: durationSecs } : {}) };
    return this.api("POST", `/v1/admin/sessions/${enc(id)}/sanctions`, body);
  }
  /** Admin only: mutes or bans a user from the whole deployment. */
  sanctionEverywhere({ userId, kind, durationSecs, reason }) {
    const body = { user_id: userId, kind, reason, ...(durationSecs ? { duration_secs: durationSecs } : {}) };
    return this.api("POST", "/v1/admin/sanctions", body);
  }
  /** Admin only: lifts a user's sanctions in a session. */
  liftSanctions(id, userId) {
    return this.api("DELETE", `/v1/admin/sessions/${enc(id)}/sanctions/${enc(userId)}`);
  }
  /** Admin only: a session's removals (with their originals) and sanctions. */
  moderationRecord(id) {
    return this.api("GET", `/v1/admin/sessions/${enc(id)}/moderation`);
  }

  /** A live connection to one session (call `connect()` on it). */
  session(id, options) {
    return new ConfabSession(this, id, options);
  }
  /** Admin only: the agents' live inbox (call `connect()` on it). */
  inbox(options) {
    return new ConfabInbox(this, options);
  }
}

/**
 * Admin only: the support desk's live inbox, one `inbox` event per session
 * event (created, message, waiting, assigned, resolved, open, closed), each
 * the session's whole inbox line. Items are not replayed: on each `ready`
 * (first connect and every reconnect) reload the listing, then apply items.
 * Events: `status` ({state}), `ready`, `inbox`, `error`, `closed`.
 */
export class ConfabInbox extends EventTarget {
  constructor(client, { backoff = {} } = {}) {
    super();
    this.client = client;
    this.backoff = backoff;
    this.attempt = 0;
    this.ws = null;
    this.stopped = false;
  }

  connect() {
    this.stopped = false;
    this.#open();
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.ws?.close(1000, "closed by client");
    this.ws = null;
    this.#emit("status", { state: "closed" });
  }

  async #open() {
    if (this.stopped) return;
    this.#emit("status", { state: this.attempt === 0 ? "connecting" : "reconnecting" });
    let ticket;
    try {
      ticket = (await this.client.api("POST", "/v1/admin/inbox/tickets")).ticket;
    } catch (e) {
      if ([401, 403, 404].includes(e.status)) return this.#terminal(1008, e.code);
      return this.#retry();
    }
    if (this.stopped) return;
    const base = this.client.baseUrl.replace(/^http/, "ws");
    const ws = new this.client.WebSocket(`${base}/v1/admin/inbox/ws?ticket=${ticket}`);
    this.ws = ws;
    ws.onmessage = (ev) => {
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (f.type === "ready") {
        this.attempt = 0;
        this.#emit("status", { state: "online" });
      }
      this.#emit(f.type, f);
      // The token expired: a fresh ticket at once (the close may lag).
      if (f.type === "error" && f.code === "token_expired") this.#reopen();
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      if (TERMINAL_CLOSE_CODES.has(ev.code)) return this.#terminal(ev.code, ev.reason);
      if (ev.code === RENEW_CLOSE_CODE) return this.#reopen();
      this.#retry();
    };
  }

  #reopen() {
    const old = this.ws;
    this.ws = null;
    old?.close(1000, "renewing");
    this.#open();
  }

  #retry() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.#open(), backoffMs(this.attempt++, this.backoff));
  }

  #terminal(code, reason) {
    this.stopped = true;
    this.#emit("status", { state: "closed" });
    this.#emit("closed", { code, reason, terminal: true });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * One session's live socket, kept alive across network trouble.
 *
 * Events (all `CustomEvent`s, payload in `detail`): `status`
 * ({state, queued}), `hello`, `synced`, `message`, `ack`, `turn`, `delta`,
 * `edited`, `deleted`, `reaction`, `poll`, `applied`, `typing`, `presence`, `receipt`, `mode`,
 * `error` (an error frame), `renew` ({code}: the token expired and a fresh
 * ticket is being fetched; no gap follows), `closed` ({code, reason, terminal}).
 */
export class ConfabSession extends EventTarget {
  constructor(client, id, { backoff = {}, outboxKey } = {}) {
    super();
    this.client = client;
    this.id = id;
    this.backoff = backoff;
    this.state = "idle";
    this.lastSeq = 0;
    // The change stream's cursor: the highest change number of which this
    // client has every change up to it (see #handle).
    this.lastChange = 0;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.outboxKey = outboxKey ?? `confab.outbox.${id}`;
    this.outbox = this.#loadOutbox();
    this.onOnline = () => this.#online();
    this.onOffline = () => this.#offline();
  }

  /** Opens the socket (and keeps reopening it until `close()`). */
  connect() {
    this.stopped = false;
    globalThis.addEventListener?.("online", this.onOnline);
    globalThis.addEventListener?.("offline", this.onOffline);
    if (globalThis.navigator?.onLine === false) return this.#setState("offline");
    this.#open();
  }

  /** Closes for good; queued messages stay in storage for next time. */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    globalThis.removeEventListener?.("online", this.onOnline);
    globalThis.removeEventListener?.("offline", this.onOffline);
    this.ws?.close(1000, "closed by client");
    this.ws = null;
    this.#setState("closed");
  }

  /** Sends a message; returns its client id. Offline, it waits in the outbox.
   *  With `poll` ({options, multiple, anonymous, closesAt}) the text is a
   *  poll's question. `attachments` are ids from `client.upload` (then
   *  the text may be empty). */
  send(text, { replyTo, poll, attachments } = {}) {
    const frame = { type: "send", client_id: newClientId(), text };
    if (replyTo) frame.reply_to = replyTo;
    if (attachments?.length) frame.attachments = attachments;
    if (poll) {
      const { options, multiple = false, anonymous = false, closesAt } = poll;
      frame.poll = { options, multiple, anonymous };
      if (closesAt != null) frame.poll.closes_at = closesAt;
    }
    return this.#queue(frame);
  }
  /** Edits, deletes or reacts to a message: queued like sends (offline they
   *  wait in the outbox) and applied exactly once; each returns its client id. */
  edit(seq, text) { return this.#queue({ type: "edit", seq, text, client_id: newClientId() }); }
  delete(seq) { return this.#queue({ type: "delete", seq, client_id: newClientId() }); }
  react(seq, emoji, action = "add") {
    return this.#queue({ type: "react", seq, emoji, action, client_id: newClientId() });
  }
  /** Votes on poll `seq`: `choices` (option indexes) replace the user's
   *  earlier ballot; [] withdraws it. Queued and applied once, like edits. */
  vote(seq, choices) {
    return this.#queue({ type: "vote", seq, choices, client_id: newClientId() });
  }
  /** Rates the assistant's reply `seq`: "up", "down" or "none" (takes it
   *  back), with an optional reason. Queued and applied once, like edits;
   *  your own sockets get `rated`. */
  rate(seq, rating, reason) {
    const frame = { type: "rate", seq, rating, client_id: newClientId() };
    if (reason) frame.reason = reason;
    return this.#queue(frame);
  }
  /** Says the user is typing; sent at most once every 2 s. */
  typing() {
    const now = Date.now();
    if (now - (this.typedAt ?? 0) < 2000) return;
    this.typedAt = now;
    this.#frame({ type: "typing" });
  }
  read(seq) { this.#frame({ type: "read", seq }); }
  // The actions below are not queued: each means "now", and a claim or a
  // stop replayed minutes later would surprise. Each returns whether it was
  // sent (false while not online); pages disable them until `online`.
  /** Stops the assistant's reply in progress. */
  stop() { return this.#frame({ type: "stop" }); }
  /** Answers the last question again: the assistant's last reply is kept,
   *  marked superseded (a `superseded` event), and a new one streams. */
  regenerate() { return this.#frame({ type: "regenerate" }); }
  /** Asks for a person: the session waits for an agent (a `desk` event follows). */
  escalate() { return this.#frame({ type: "escalate" }); }
  /** Agents (admins) only: claim (or its older name, takeover), transfer to
   * another agent by user id, resolve, release to the assistant. */
  claim() { return this.#frame({ type: "claim" }); }
  takeover() { return this.#frame({ type: "takeover" }); }
  transfer(to) { return this.#frame({ type: "transfer", to }); }
  resolve() { return this.#frame({ type: "resolve" }); }
  release() { return this.#frame({ type: "release" }); }
  /** Agents: approve or reject the assistant's call `callId` (an
   *  `approval_request`); everyone gets an `approval` event. */
  approve(callId) { return this.#frame({ type: "approve", call_id: callId }); }
  reject(callId) { return this.#frame({ type: "reject", call_id: callId }); }
  /** Agents: the assistant answers under `profile` from its next reply. */
  setProfile(profile) { return this.#frame({ type: "set_profile", profile }); }

  /** Messages sent but not yet acknowledged (kept across reloads). */
  get queued() {
    return this.outbox.length;
  }

  #queue(frame) {
    this.outbox.push(frame);
    this.#saveOutbox();
    if (this.state === "online") this.#raw(frame);
    else this.#emitStatus();
    return frame.client_id;
  }
  #frame(f) {
    if (this.state !== "online") return false;
    this.#raw(f);
    return true;
  }
  #raw(f) {
    try {
      this.ws?.send(JSON.stringify(f));
    } catch {
      // The close handler reconnects; sends stay in the outbox.
    }
  }

  async #open() {
    if (this.stopped) return;
    // A renewal keeps showing "online": the new socket resumes after the
    // last seq and the outbox is resent, so the user sees no gap.
    if (!this.renewing) this.#setState(this.attempt === 0 && this.lastSeq === 0 ? "connecting" : "reconnecting");
    let ticket;
    try {
      ticket = (await this.client.ticket(this.id)).ticket;
    } catch (e) {
      // 401/403/404 will not get better by retrying.
      if ([401, 403, 404].includes(e.status)) return this.#terminal(e.status === 404 ? 4004 : 1008, e.code);
      return this.#retry();
    }
    if (this.stopped) return;
    const base = this.client.baseUrl.replace(/^http/, "ws");
    // Always resume: from 0 the server replays the whole conversation;
    // set `lastSeq` first (e.g. after loading a history page) to start later.
    // `changes`: the edits, deletions, reactions and votes missed meanwhile, to
    // messages already here, follow the new messages.
    const after = `&after=${this.lastSeq}&changes=${this.lastChange}`;
    this.seenChange = this.lastChange;
    // batch=1: messages committed together arrive in one `batch` frame
    // (fewer frames under load); #onFrame handles each one as if alone.
    const ws = new this.client.WebSocket(`${base}/v1/sessions/${enc(this.id)}/ws?ticket=${ticket}${after}&batch=1`);
    this.ws = ws;
    ws.onmessage = (ev) => this.#onFrame(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (TERMINAL_CLOSE_CODES.has(ev.code)) return this.#terminal(ev.code, ev.reason);
      if (globalThis.navigator?.onLine === false) return this.#setState("offline");
      if (ev.code === RENEW_CLOSE_CODE) return this.#renew();
      this.#retry();
    };
  }

  /** The token behind the socket expired: let the old socket go and open a
   *  new one with a fresh ticket at once. Started by the `token_expired`
   *  frame that precedes close 4001, since a browser may hold the close
   *  event back for its closing handshake (Chromium: up to 2 s). */
  #renew() {
    if (this.stopped || this.renewing) return;
    const old = this.ws;
    this.ws = null;
    old?.close(1000, "renewing");
    this.renewing = true;
    this.#emit("renew", { code: RENEW_CLOSE_CODE });
    this.#open();
  }

  #retry() {
    if (this.stopped) return;
    this.renewing = false;
    const wait = backoffMs(this.attempt++, this.backoff);
    this.#setState("reconnecting");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.#open(), wait);
  }

  #terminal(code, reason) {
    this.stopped = true;
    this.#setState("closed");
    this.#emit("closed", { code, reason, terminal: true });
  }

  #online() {
    if (this.stopped || this.state === "online") return;
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    this.#open();
  }

  #offline() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, "offline");
    this.#setState("offline");
  }

  #onFrame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (f.type === "batch" && Array.isArray(f.frames)) {
      for (const inner of f.frames) this.#handle(inner);
      return;
    }
    this.#handle(f);
  }

  #handle(f) {
    if (!f || typeof f !== "object") return;
    switch (f.type) {
      case "synced":
        this.attempt = 0;
        this.renewing = false;
        this.lastSeq = Math.max(this.lastSeq, f.last_seq ?? 0);
        // Every change up to `last_change` has come by now, and any later
        // one came live: the cursor moves only here and once online, so a
        // socket lost mid-replay resumes from where it was.
        this.lastChange = Math.max(this.lastChange, this.seenChange ?? 0, f.last_change ?? 0);
        this.#setState("online");
        // Everything not yet acked goes again, with its original client id:
        // the server stores each client id once, so nothing doubles.
        for (const frame of this.outbox) this.#raw(frame);
        break;
      case "message":
        if (f.seq <= this.lastSeq && this.state === "online") return; // already seen
        this.lastSeq = Math.max(this.lastSeq, f.seq);
        this.#dropFromOutbox(f.client_id, f.author?.id);
        break;
      case "edited":
      case "deleted":
      case "reaction":
      case "poll":
      case "superseded":
        this.seenChange = Math.max(this.seenChange ?? 0, f.change ?? 0);
        if (this.state === "online") this.lastChange = this.seenChange;
        break;
      case "ack":
      case "applied":
        this.#dropFromOutbox(f.client_id);
        break;
      case "error":
        // Refused for good (a closed session, a text too long, not the
        // author, …): resending cannot help.
        if (f.client_id && !RETRYABLE_CODES.has(f.code)) this.#dropFromOutbox(f.client_id);
        if (f.code === "token_expired") {
          this.#emit(f.type, f);
          return this.#renew();
        }
        break;
    }
    this.#emit(f.type, f);
  }

  #dropFromOutbox(clientId) {
    if (!clientId) return;
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((m) => m.client_id !== clientId);
    if (this.outbox.length !== before) {
      this.#saveOutbox();
      this.#emitStatus();
    }
  }

  #loadOutbox() {
    try {
      return JSON.parse(this.client.storage?.getItem(this.outboxKey) ?? "[]");
    } catch {
      return [];
    }
  }
  #saveOutbox() {
    try {
      if (this.outbox.length) this.client.storage?.setItem(this.outboxKey, JSON.stringify(this.outbox));
      else this.client.storage?.removeItem(this.outboxKey);
    } catch {
      // Storage full or blocked: the outbox still lives in memory.
    }
  }

  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.#emitStatus();
  }
  #emitStatus() {
    this.#emit("status", { state: this.state, queued: this.outbox.length });
  }
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function defaultStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

function enc(s) {
  return encodeURIComponent(s);
}

function query(params) {
  const q = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return q.length ? "?" + q.map(([k, v]) => `${enc(k)}=${enc(String(v))}`).join("&") : "";
}
