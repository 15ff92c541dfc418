// Types for confab.js, Confab's browser client. See docs/client.md.

export declare const TERMINAL_CLOSE_CODES: Set<number>;
export declare const RENEW_CLOSE_CODE: 4001;
export declare function backoffMs(attempt: number, options?: { baseMs?: number; capMs?: number; random?: () => number }): number;
export declare function newClientId(): string;

export declare class ConfabError extends Error {
  /** HTTP status (0 for a network failure). */
  status: number;
  /** The API's stable error code, e.g. `token_expired`, `not_found`. */
  code: string;
  requestId?: string;
}

export interface UserRef { id: string; name: string }
export interface Author extends UserRef { kind: "user" | "assistant" | "agent" | "system" }
export interface Message {
  seq: number; id: string; client_id?: string; author: Author; text: string; created_at: number;
  reply_to?: number; edited_at?: number; deleted?: boolean;
  /** Set when a moderator removed the message (it is `deleted` too). */
  removed?: Removal;
  reactions?: { emoji: string; users: string[] }[];
  /** Set when the message is a poll asking `text`. */
  poll?: Poll;
  /** Files the message carries, in the order sent. */
  attachments?: Attachment[];
  /** The people it mentions (`@name`, resolved when sent). */
  mentions?: UserRef[];
  /** An assistant reply answered again by `regenerate`. */
  superseded?: boolean;
  /** Absent on people's and the assistant's words. `tool_call` or
   *  `tool_result` on the messages of the assistant's function calls (with
   *  `call` or `result`, and empty `text`): agents get them, users only
   *  under a profile that shows them. */
  kind?: "tool_call" | "tool_result";
  /** Why the stored text (or a call's arguments or result) cannot be read. */
  unreadable?: string;
  /** With `kind` tool_call (`arguments` null when it cannot be read). */
  call?: { id: string; name: string; arguments: Record<string, unknown> | null; decision?: "approved" | "rejected" | "timed_out" };
  /** With `kind` tool_result. */
  result?: { call_id: string; name: string; content: string; is_error: boolean };
  turn?: {
    /** The assistant profile the reply was written under. */
    profile: string;
    provider: string; model: string; tokens_in: number; tokens_out: number;
    /** Part of `tokens_in` read from the provider's prompt cache (absent when 0). */
    tokens_cached?: number;
    /** The reply's cost in US dollars at the operator's prices (absent when unpriced). */
    cost_usd?: number;
    ttft_ms: number; latency_ms: number; finish_reason: string; incomplete: boolean;
  };
}
/** Where a poll stands. `users` (who chose each option) only when the poll
 *  is not anonymous; `mine` (your ballot) in history, replays and frames to
 *  your own sockets. */
export type Rating = "up" | "down" | "none";
export interface Tally { counts: number[]; voters: number; users?: string[][]; closed: boolean; mine?: number[] }
export interface Poll { options: string[]; multiple: boolean; anonymous: boolean; closes_at?: number; tally: Tally }
export interface PollOptions { options: string[]; multiple?: boolean; anonymous?: boolean; closesAt?: number }
/** An uploaded file. `width` and `height` for images whose header says them. */
export interface Attachment { id: string; name: string; type: string; size: number; width?: number; height?: number }
/** A download link: absolute, working without a token until `expires_at` (unix ms). */
export interface AttachmentLink extends Attachment { url: string; expires_at: number }
export interface LinkPreview { url: string; title: string | null; description: string | null; image: string | null; site_name: string | null }
export interface SessionView {
  id: string; owner_id: string; title: string | null; contact: { name: string; email: string } | null;
  mode: "assistant" | "human"; status: "open" | "waiting" | "assigned" | "resolved" | "closed";
  /** The assistant profile its replies are written under. */
  profile: string;
  /** The support desk: who has the session, and the inbox's times (unix ms). */
  assignee: UserRef | null; waiting_since: number | null; first_agent_reply_at: number | null; resolved_at: number | null;
  last_seq: number; message_count: number; created_at: number; updated_at: number;
}
export type DeskStatus = SessionView["status"];
/** A function call the assistant asks for (agents are shown these). */
export interface ToolCall { id: string; name: string; arguments: Record<string, unknown> }
/** One group of the cost ledger: named by `day`, `user_id`, `profile`, or `provider` and `model`. */
export interface UsageItem {
  day?: string; user_id?: string; profile?: string; provider?: string; model?: string;
  turns: number; tokens_in: number; tokens_out: number; tokens_cached: number;
  /** US dollars; replies of unpriced models are counted in `unpriced_turns` instead. */
  cost_usd: number; unpriced_turns: number;
}
export interface UsageReport { by: "day" | "user" | "profile" | "model"; currency: "USD"; items: UsageItem[]; next_cursor: string | null }
export type ConnectionState = "idle" | "connecting" | "online" | "reconnecting" | "offline" | "closed";

export interface ClientOptions {
  /** Where Confab runs; defaults to the page's origin. */
  baseUrl?: string;
  /** Returns the user's JWT (called for every API call, so it may refresh). */
  getToken: () => string | Promise<string>;
  /** Where the offline outbox lives; defaults to localStorage. */
  storage?: Storage;
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
}

/** Why a message is reported or removed. */
export type ModerationReason = "spam" | "harassment" | "abuse" | "other";
export interface Removal { by: UserRef; reason: ModerationReason; at: number }
export interface Sanction { user_id: string; kind: "mute" | "ban"; until: number | null; reason: ModerationReason; by: UserRef; at: number }
/** What the pre-send filter did with a message (`seq` when it was stored). */
export interface FilterDecision {
  id: string; at: number; session_id: string; user_id: string; source: "words" | "ai";
  action: "flagged" | "blocked"; detail: string; seq: number | null;
}
/** A message in the moderation queue, with its open reports by reason. */
export interface QueueItem {
  session_id: string; seq: number; message_id: string; author_id: string; reports: number;
  reasons: { reason: ModerationReason; count: number }[]; by_filter: boolean; first_reported_at: number; last_reported_at: number;
}

/** A search result (GET /v1/search); render the snippet's pieces as text. */
export interface SearchHit {
  session_id: string;
  session_title: string | null;
  seq: number;
  message_id: string;
  author: { id: string; name: string; kind: "user" | "assistant" | "agent" | "system" };
  created_at: number;
  snippet: { text: string; hit: boolean }[];
}

export declare class ConfabClient {
  constructor(options: ClientOptions);
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  search(q: string, page?: { cursor?: string; limit?: number }): Promise<{ results: SearchHit[]; next_cursor: string | null }>;
  listSessions(q?: { cursor?: string; limit?: number }): Promise<{ sessions: SessionView[]; next_cursor: string | null }>;
  createSession(s?: { title?: string; contact?: { name: string; email: string }; profile?: string }): Promise<SessionView>;
  getSession(id: string): Promise<SessionView>;
  deleteSession(id: string): Promise<null>;
  /** With `thread`: that message and the replies to it only. */
  history(id: string, q?: { before?: number; limit?: number; thread?: number }): Promise<{ messages: Message[]; next_before: number | null; last_seq: number; last_change: number }>;
  /** A link's preview, fetched by the server (404 when LINK_PREVIEWS is off). */
  linkPreview(url: string): Promise<LinkPreview>;
  /** Uploads a file to a session (slot, then PUT); send its `id` with `send`.
   *  Rejects with 413 `attachment_too_large`, 415 `unsupported_type` or
   *  `content_mismatch`, 400 `attachment_empty`. */
  upload(id: string, file: Blob, options?: { name?: string }): Promise<Attachment>;
  attachmentLink(id: string, attachmentId: string): Promise<AttachmentLink>;
  addMember(id: string, userId: string): Promise<{ user_id: string }>;
  ticket(id: string): Promise<{ ticket: string; expires_in: number }>;
  adminSessions(q?: Record<string, string | number>): Promise<{ sessions: (SessionView & { tokens: number; human_assisted: boolean })[]; next_cursor: string | null }>;
  adminSession(id: string): Promise<{ session: SessionView; usage: Record<string, unknown>; feedback: { seq: number; user_id: string; rating: "up" | "down"; reason: string | null; at: number }[];
    /** The assistant's newest function calls, and what became of them. */
    tools: { call_id: string; name: string; arguments: Record<string, unknown> | null; result: string | null; is_error: boolean | null; decision: "approved" | "rejected" | "timed_out" | null; decided_by: string | null; at: number; done_at: number | null }[] }>;
  /** Admin only: the cost ledger by day, user, profile or model (docs/api.md). */
  adminUsage(params?: { by?: "day" | "user" | "profile" | "model"; from?: string; to?: string; user?: string; profile?: string; limit?: number; cursor?: string }): Promise<UsageReport>;
  /** Admin only: a desk action; 409 `already_assigned` when another agent has it. */
  adminDesk(id: string, action: "escalate" | "claim" | "transfer" | "resolve" | "release" | "close", body?: { to: string }): Promise<{ id: string; mode: "assistant" | "human"; status: DeskStatus; assignee: UserRef | null; by: UserRef | null }>;
  /** The people you blocked. */
  blocks(): Promise<{ blocked: string[] }>;
  /** Blocks someone in every conversation you are in; 400 `cannot_block_self`, `too_many_blocks`. */
  block(userId: string, where?: { session?: string }): Promise<{ blocked: string }>;
  unblock(userId: string, where?: { session?: string }): Promise<null>;
  /** Reports someone else's message; 200 with your earlier report of it. */
  report(id: string, seq: number, reason: ModerationReason): Promise<{ id: string; session_id: string; seq: number; status: "open" | "removed" | "dismissed" }>;
  /** Admin only: the moderation queue. */
  moderationQueue(page?: { cursor?: string; limit?: number }): Promise<{ items: QueueItem[]; next_cursor: string | null }>;
  /** Admin only: the pre-send filter's decisions, newest first. */
  filterLog(page?: { cursor?: string; limit?: number }): Promise<{ decisions: FilterDecision[]; next_cursor: string | null }>;
  /** Admin only: removes a message for everyone; 409 `message_deleted` when it is gone already. */
  removeMessage(id: string, seq: number, reason: ModerationReason): Promise<{ seq: number; change: number; removed: Removal; reports_closed: number }>;
  /** Admin only: closes a message's open reports; 404 when it has none. */
  dismissReports(id: string, seq: number): Promise<{ seq: number; reports_closed: number }>;
  /** Admin only: mutes or bans a user from a session, for `durationSecs` or until lifted. */
  sanction(id: string, s: { userId: string; kind: "mute" | "ban"; durationSecs?: number; reason: ModerationReason }): Promise<Sanction>;
  liftSanctions(id: string, userId: string): Promise<null>;
  /** Admin only: the same for the whole deployment (`POST /v1/admin/sanctions`). */
  sanctionEverywhere(s: { userId: string; kind: "mute" | "ban"; durationSecs?: number; reason: ModerationReason }): Promise<Sanction>;
  moderationRecord(id: string): Promise<{ removals: ({ seq: number; author_id: string; original: string; unreadable?: string } & Removal)[]; sanctions: Sanction[] }>;
  session(id: string, options?: SessionOptions): ConfabSession;
  /** Admin only: the support desk's live inbox. */
  inbox(options?: { backoff?: { baseMs?: number; capMs?: number } }): ConfabInbox;
}

export interface SessionOptions {
  backoff?: { baseMs?: number; capMs?: number };
  /** Storage key of this session's outbox (default `confab.outbox.<id>`). */
  outboxKey?: string;
}

export interface SessionEvents {
  status: { state: ConnectionState; queued: number };
  hello: { you: UserRef; session: string; last_seq: number; present: { user: UserRef; devices: number }[]; reads: { user_id: string; seq: number }[]; status: DeskStatus; assignee: UserRef | null; last_change: number; profile: string };
  synced: { last_seq: number; last_change: number };
  message: Message;
  ack: { client_id: string; seq: number; id: string; duplicate: boolean };
  turn: { message_id: string; author: Author; text: string; index: number };
  delta: { message_id: string; index: number; text: string };
  /** `change`: the change's number in the session's change stream. */
  edited: { seq: number; text: string; edited_at: number; change: number };
  /** `removed` when a moderator removed it. */
  deleted: { seq: number; deleted_at: number; change: number; removed?: Removal };
  /** Someone mentioned you in another of your sessions. */
  mention: { session: string; seq: number; message_id: string; by: UserRef; text: string };
  reaction: { seq: number; emoji: string; user: UserRef; action: "add" | "remove"; change: number };
  /** A poll's tally changed (a vote, or it closed). */
  poll: { seq: number; tally: Tally; change: number };
  /** Your rating of a reply, on your own sockets only. */
  rated: { seq: number; rating: Rating; reason?: string };
  /** An assistant reply was answered again (`regenerate`); it stays, superseded. */
  superseded: { seq: number; change: number };
  /** Your edit, deletion, reaction or vote took effect (`change` null: it changed nothing). */
  applied: { client_id: string; change: number | null; duplicate: boolean };
  typing: { user: UserRef };
  presence: { user: UserRef; status: "joined" | "left"; devices: number };
  receipt: { user: UserRef; seq: number };
  mode: { mode: "assistant" | "human"; by: UserRef };
  /** An agent switched the assistant profile. */
  profile: { profile: string; by: UserRef };
  /** Agents: the assistant asks for function calls, and what each came to. */
  /** Agents: a call waits for your `approve` or `reject` until `expires_at`. */
  approval_request: { call: ToolCall; expires_at: number };
  /** Users: the assistant waits for a person to approve a call. */
  awaiting_approval: { call_id: string; expires_at: number };
  /** A waiting call was decided (`by` null when it timed out). */
  approval: { call_id: string; decision: "approved" | "rejected" | "timed_out"; by: UserRef | null };
  /** The desk state changed; `by` is null when Confab changed it (the idle close, a timeout). */
  desk: { status: DeskStatus; assignee: UserRef | null; waiting_since: number | null; first_agent_reply_at: number | null; resolved_at: number | null; by: UserRef | null };
  error: { code: string; message: string; client_id?: string; retry_after_ms?: number };
  renew: { code: 4001 };
  closed: { code: number; reason?: string; terminal: true };
}

export declare class ConfabSession extends EventTarget {
  readonly id: string;
  readonly state: ConnectionState;
  /** The highest seq seen; set it before `connect()` to resume from there. */
  lastSeq: number;
  /** The change number up to which every change has arrived; resumes pass it. */
  lastChange: number;
  /** Messages and changes not yet acknowledged (persisted in storage). */
  readonly queued: number;
  connect(): void;
  close(): void;
  /** Returns the message's client id. Queued while offline; sent exactly once. */
  send(text: string, options?: { replyTo?: number; poll?: PollOptions; attachments?: string[] }): string;
  /** Edits, deletions, reactions and votes are queued like sends and applied exactly
   *  once; each returns its client id (`applied` or an `error` names it). */
  edit(seq: number, text: string): string;
  delete(seq: number): string;
  react(seq: number, emoji: string, action?: "add" | "remove"): string;
  /** Replaces your ballot on poll `seq` (option indexes; [] withdraws it). */
  vote(seq: number, choices: number[]): string;
  /** Rates the assistant's reply `seq` ("none" takes the rating back); queued like edits. */
  rate(seq: number, rating: Rating, reason?: string): string;
  typing(): void;
  read(seq: number): void;
  /** Actions below are not queued: each returns whether it was sent
   * (false while the socket is not online). */
  stop(): boolean;
  /** Answers the last question again; the earlier reply is kept, marked superseded. */
  regenerate(): boolean;
  /** Asks for a person: the session waits for an agent. */
  escalate(): boolean;
  /** Agents: take the session (`already_assigned` if another agent has it). */
  claim(): boolean;
  /** Agents: the older name of `claim`. */
  takeover(): boolean;
  /** Agents: give the session to another agent, by user id. */
  transfer(to: string): boolean;
  /** Agents: end the conversation; the user's next message reopens it. */
  resolve(): boolean;
  /** Agents: hand the session back to the assistant. */
  release(): boolean;
  /** Agents: approve or reject the assistant's call waiting for approval. */
  approve(callId: string): boolean;
  reject(callId: string): boolean;
  /** Agents: switch the assistant profile ("default": the deployment's). */
  setProfile(profile: string): boolean;
  addEventListener<K extends keyof SessionEvents>(type: K, listener: (e: CustomEvent<SessionEvents[K]>) => void, options?: boolean | AddEventListenerOptions): void;
  // EventTarget's own signature, which a subclass must keep.
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof SessionEvents>(type: K, listener: (e: CustomEvent<SessionEvents[K]>) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/** What happened to a session, in an inbox item. */
export type InboxEvent = "created" | "message" | "open" | "waiting" | "assigned" | "resolved" | "closed" | "deleted";
/** One session's whole inbox line after an event (times in unix ms). */
export interface InboxItem {
  event: InboxEvent; session: string; owner_id: string; status: DeskStatus; assignee: UserRef | null;
  waiting_since: number | null; first_agent_reply_at: number | null; resolved_at: number | null;
  /** The stored message's start (at most 140 characters), for `message`. */
  preview: { author: Author; text: string } | null;
  at: number;
}
export interface InboxEvents {
  status: { state: ConnectionState };
  /** (Re)connected: items are not replayed, so reload the listing now. */
  ready: Record<string, never>;
  inbox: InboxItem;
  error: { code: string; message: string };
  closed: { code: number; reason?: string; terminal: true };
}
export declare class ConfabInbox extends EventTarget {
  connect(): void;
  close(): void;
  addEventListener<K extends keyof InboxEvents>(type: K, listener: (e: CustomEvent<InboxEvents[K]>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}
