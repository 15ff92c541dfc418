// Types of @confab/client/store.
import type { Author, ConfabSession, ConnectionState, DeskStatus, Message, UserRef } from "./confab.js";

export interface Streaming {
  /** The message id the reply will be stored under. */
  id: string;
  author: Author;
  text: string;
}

export interface SessionSnapshot {
  state: ConnectionState;
  /** Frames in the outbox, not yet acknowledged. */
  queued: number;
  /** Stored messages in seq order (the newest `limit`). */
  messages: Message[];
  /** The assistant's reply in progress. */
  streaming: Streaming | null;
  /** Who is typing now. */
  typing: UserRef[];
  desk: { status: DeskStatus; assignee: UserRef | null } | null;
  /** The last error frame. */
  error: { code: string; message: string; client_id?: string } | null;
}

export interface SessionStore {
  getSnapshot(): SessionSnapshot;
  subscribe(fn: (snapshot: SessionSnapshot) => void): () => void;
  destroy(): void;
}

export function sessionStore(session: ConfabSession, options?: { limit?: number }): SessionStore;
