// Types of @confab/client/react.
import type { ConfabClient, ConfabSession, SessionOptions } from "./confab.js";
import type { SessionSnapshot } from "./store.js";

export interface UseConfabSession extends SessionSnapshot {
  session: ConfabSession;
  send(text: string, options?: Parameters<ConfabSession["send"]>[1]): string;
  stop(): boolean;
  escalate(): boolean;
  sendTyping(): void;
}

export function useConfabSession(client: ConfabClient, id: string, options?: SessionOptions): UseConfabSession;
