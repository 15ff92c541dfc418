// A framework-neutral view of one ConfabSession (`@confab/client/store`):
// an immutable snapshot replaced on every event that changes it, and
// `subscribe`. It fits React's useSyncExternalStore (./react.js), Svelte's
// store contract, Vue's shallowRef, or plain callbacks.

/** How long a `typing` frame keeps its author in `typing`. */
const TYPING_MS = 4000;

/**
 * Follows `session` (a ConfabSession) from now on; call before `connect()`
 * to see everything. Snapshot: `{state, queued, messages, streaming,
 * typing, desk, error}`: `messages` are stored messages in seq order (the
 * newest `limit`), `streaming` the assistant's reply in progress
 * (`{id, author, text}`) or null, `typing` the people typing now, `desk`
 * the support desk's `{status, assignee}`, `error` the last error frame.
 */
export function sessionStore(session, { limit = 500 } = {}) {
  let snap = {
    state: session.state,
    queued: session.queued,
    messages: [],
    streaming: null,
    typing: [],
    desk: null,
    error: null,
  };
  const listeners = new Set();
  const timers = new Map();
  const set = (patch) => {
    snap = { ...snap, ...patch };
    for (const fn of listeners) fn(snap);
  };
  const put = (m) => {
    const i = snap.messages.findIndex((x) => x.seq === m.seq);
    if (i >= 0) return snap.messages.map((x, j) => (j === i ? m : x));
    const messages = [...snap.messages, m];
    if (messages.length > 1 && messages[messages.length - 2].seq > m.seq) messages.sort((a, b) => a.seq - b.seq);
    return messages.slice(-limit);
  };
  const change = (seq, fn) => {
    const i = snap.messages.findIndex((x) => x.seq === seq);
    if (i >= 0) set({ messages: snap.messages.map((x, j) => (j === i ? fn(x) : x)) });
  };
  const stopTyping = (id) => {
    clearTimeout(timers.get(id));
    timers.delete(id);
    if (snap.typing.some((u) => u.id === id)) set({ typing: snap.typing.filter((u) => u.id !== id) });
  };
  const desk = (f) => set({ desk: { status: f.status, assignee: f.assignee ?? null } });
  const handlers = {
    status: ({ state, queued }) => set({ state, queued: queued ?? snap.queued }),
    hello: desk,
    desk,
    message: (m) => {
      stopTyping(m.author?.id);
      set({ messages: put(m), streaming: snap.streaming?.id === m.id ? null : snap.streaming });
    },
    turn: (f) => set({ streaming: { id: f.message_id, author: f.author, text: f.text ?? "" } }),
    delta: (f) => {
      if (snap.streaming?.id === f.message_id) set({ streaming: { ...snap.streaming, text: snap.streaming.text + f.text } });
    },
    edited: (f) => change(f.seq, (m) => ({ ...m, text: f.text, edited: true })),
    deleted: (f) => change(f.seq, (m) => ({ ...m, text: "", deleted: true, removed: f.removed })),
    typing: (f) => {
      const who = f.user;
      if (!who) return;
      clearTimeout(timers.get(who.id));
      timers.set(who.id, setTimeout(() => stopTyping(who.id), TYPING_MS));
      if (!snap.typing.some((u) => u.id === who.id)) set({ typing: [...snap.typing, who] });
    },
    error: (f) => set({ error: f }),
  };
  const wrapped = Object.entries(handlers).map(([type, fn]) => [type, (e) => fn(e.detail)]);
  for (const [type, fn] of wrapped) session.addEventListener(type, fn);
  return {
    /** The current snapshot (the same object until something changes). */
    getSnapshot: () => snap,
    /** Calls `fn(snapshot)` after each change; returns the unsubscribe. */
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    /** Stops following the session (it stays connected). */
    destroy() {
      for (const [type, fn] of wrapped) session.removeEventListener(type, fn);
      for (const t of timers.values()) clearTimeout(t);
      listeners.clear();
    },
  };
}
