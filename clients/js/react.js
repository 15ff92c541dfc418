// `useConfabSession`: one Confab session in a React component
// (`@confab/client/react`), a thin layer over ./store.js.
import { useEffect, useMemo, useSyncExternalStore } from "react";
import { sessionStore } from "./store.js";

/**
 * Connects to session `id` with `client` (a ConfabClient) while the
 * component is mounted, and re-renders it as the session changes. Returns
 * the store's snapshot (`state`, `messages`, `streaming`, `typing`, `desk`,
 * …) plus `session` and its actions: `send`, `stop`, `escalate`,
 * `sendTyping`.
 * Pass a stable `client`; a new `id` opens that session instead.
 */
export function useConfabSession(client, id, options) {
  const { session, store } = useMemo(() => {
    const session = client.session(id, options);
    return { session, store: sessionStore(session) };
    // `options` is read once per session, as the client reads it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, id]);
  // Connect while mounted. (The store is not destroyed on unmount: it
  // follows only this session object, which goes with it, and React's
  // strict mode unmounts and mounts again with the same memo.)
  useEffect(() => {
    session.connect();
    return () => session.close();
  }, [session]);
  const snap = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  return useMemo(() => ({
    ...snap,
    session,
    send: (text, opts) => session.send(text, opts),
    stop: () => session.stop(),
    escalate: () => session.escalate(),
    sendTyping: () => session.typing(),
  }), [snap, session]);
}
