// Signing in for the bundled pages.
//
// Development (`GET /v1/client-config` says `dev_sign_in`): a form asks for a
// name and a role and gets a token from `POST /v1/dev/token`. The user id is
// derived from the name, so the same name in another browser is the same
// user. Production has no form: the embedding app hands the page a token,
// as `#token=…` in the URL (never sent to the server), `window.CONFAB_TOKEN`,
// or a `{"type":"confab-token","token":…}` message from the parent frame. A
// message counts only when it comes from this page's own parent and that
// parent's origin is on the deployment's allowlist (`embed_origins` in
// `GET /v1/client-config`, the same list the page's frame-ancestors names).

import { h } from "/dom.js";

const KEY = "confab.token";

/** Derives a stable dev user id from a display name. */
export function devUserId(name, role) {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40) || "user";
  return `dev-${role === "admin" ? "admin-" : ""}${slug}`;
}

function decode(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(decodeURIComponent(escape(atob(payload))));
  } catch {
    return null;
  }
}

/** The signed-in identity from a token: {token, id, name, roles}. */
export function identity(token) {
  const c = decode(token);
  if (!c || (c.exp && c.exp * 1000 < Date.now())) return null;
  return { token, id: c.sub, name: c.name ?? c.sub, roles: c.roles ?? [] };
}

/** Whether `origin` matches one of the allowlist's entries: exact origins,
 *  `https://*.example.com` wildcards and, in development, `http://localhost:*`. */
export function originAllowed(origin, patterns) {
  return patterns.some((p) => {
    const star = p.indexOf("*");
    if (star < 0) return p === origin;
    const [head, tail] = [p.slice(0, star), p.slice(star + 1)];
    if (!origin.startsWith(head) || !origin.endsWith(tail)) return false;
    const middle = origin.slice(head.length, origin.length - tail.length);
    // `*.` stands for one or more host labels; `:*` for a port.
    return tail.startsWith(".") ? /^[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(middle) : /^\d+$/.test(middle);
  });
}

// The identity the page uses now. An embedding app may replace its token
// with a fresh one at any time (same user only); see freshToken().
let current = null;
// The allowed parent origin that handed us a token, once one has.
let parentOrigin = null;
// Callers waiting for the next token message.
const waiting = [];

/** Listens for token messages from our own, allowed parent frame. */
function listenToParent(config) {
  if (window.parent === window) return;
  const allowed = [location.origin, ...(config.embed_origins ?? [])];
  addEventListener("message", (e) => {
    if (e.source !== window.parent || !originAllowed(e.origin, allowed)) return;
    const who = e.data?.type === "confab-token" ? identity(e.data.token) : null;
    // A token for someone else never switches users mid-page.
    if (!who || (current && who.id !== current.id)) return;
    parentOrigin = e.origin;
    current = who;
    sessionStorage.setItem(KEY, who.token);
    for (const wake of waiting.splice(0)) wake(who);
  });
}

/** Tokens with less left than this are renewed before use (here and in
 *  the widget's panel). */
const RENEW_MARGIN_MS = 10_000;

/** Whether `token` has more than RENEW_MARGIN_MS left. */
export function hasTimeLeft(token) {
  const exp = decode(token ?? "")?.exp;
  return !!exp && exp * 1000 - Date.now() > RENEW_MARGIN_MS;
}

/**
 * The token to call the API with: the current one while it has more than
 * 10 s left; otherwise, when an allowed parent frame gave us our token, a
 * fresh one asked of it (`{"type": "confab-token-request"}`, answered with a
 * `confab-token` message; 5 s at most). Pass it as the client's `getToken`,
 * so a socket closed with 4001 resumes with a fresh ticket.
 */
export async function freshToken() {
  if (!parentOrigin || !decode(current.token)?.exp || hasTimeLeft(current.token)) return current.token;
  const next = new Promise((wake) => waiting.push(wake));
  window.parent.postMessage({ type: "confab-token-request" }, parentOrigin);
  const who = await Promise.race([next, new Promise((r) => setTimeout(() => r(null), 5000))]);
  return (who ?? current).token;
}

function signedIn(who) {
  current = who;
  return who;
}

function fromEmbedder() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const t = hash.get("token") ?? globalThis.CONFAB_TOKEN;
  if (hash.has("token")) history.replaceState(null, "", location.pathname + location.search);
  return t ? identity(t) : null;
}

/**
 * Resolves with the signed-in identity, showing the sign-in form inside
 * `root` when needed. `wantRole` preselects the role (the admin console
 * asks for `admin`).
 */
export async function signIn(root, { wantRole = "user" } = {}) {
  const config = await fetch("/v1/client-config").then((r) => r.json()).catch(() => ({}));
  listenToParent(config);
  const given = fromEmbedder();
  if (given) {
    sessionStorage.setItem(KEY, given.token);
    return signedIn(given);
  }
  const stored = identity(sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY) ?? "");
  if (stored && (wantRole !== "admin" || stored.roles.includes("admin"))) return signedIn(stored);

  if (!config.dev_sign_in) {
    root.replaceChildren(
      h("section", { class: "card", role: "alert" },
        h("h1", {}, "Sign-in needed"),
        h("p", {}, "This page expects a token from the app that embeds it (",
          h("code", {}, "#token=…"), ", ", h("code", {}, "window.CONFAB_TOKEN"), ", or a ",
          h("code", {}, "confab-token"), " message from an allowed parent page). See docs/client.md.")),
    );
    // The listener above stores it and wakes us.
    return current ?? new Promise((wake) => waiting.push(wake));
  }
  const form = h("form", { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in (development)"),
    h("p", { class: "hint" }, "Local sign-in: any name works. Production pages take a token from your app instead."),
    h("label", { for: "signin-name" }, "Your name"),
    h("input", { id: "signin-name", name: "name", required: true, maxlength: 100, autocomplete: "name" }),
    h("label", { for: "signin-role" }, "Role"),
    h("select", { id: "signin-role", name: "role" },
      h("option", { value: "user" }, "User"),
      h("option", { value: "admin" }, "Support agent (admin)")),
    h("button", { type: "submit" }, "Sign in"),
    h("p", { class: "error", role: "alert", hidden: true }));
  root.replaceChildren(form);
  form.role.value = wantRole;
  form.name.focus();
  return new Promise((resolve) => {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const name = form.name.value.trim();
      const role = form.role.value;
      const res = await fetch("/v1/dev/token", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name, sub: devUserId(name, role), roles: role === "admin" ? ["admin"] : [] }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        const p = form.querySelector(".error");
        p.textContent = body?.error?.message ?? "sign-in failed";
        p.hidden = false;
        return;
      }
      localStorage.setItem(KEY, body.token);
      resolve(signedIn(identity(body.token)));
    });
  });
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
  location.reload();
}
