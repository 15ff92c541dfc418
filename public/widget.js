// Confab's embeddable support chat: the launcher a product's page loads
// with one tag (docs/client.md, "The widget"):
//
//   <script src="https://chat.example.com/widget.js" data-title="Support" async></script>
//
// It draws a bubble in a shadow root (the page's styles cannot reach it,
// nor its styles the page) and, on first open, an iframe of Confab's own
// `/widget` page, where the conversation runs: the host page's scripts
// never see the transcript or a token. The two speak only through
// `postMessage`, each checking the other's origin and window. This file is
// the whole of what a page downloads before the panel opens; keep it small.
(() => {
  if (window.Confab?.mount) return; // loaded twice
  const script = document.currentScript;
  const BASE = new URL(script.src).origin;
  const KEY = "confab.widget";
  const STRINGS = {
    open: "Open chat",
    close: "Close chat",
    unread: "new messages",
    flash: "New message",
  };

  /** Mounts the widget; resolves to {open, close, destroy} or null when
   *  this page may not embed Confab (the console says why). */
  async function mount(options = {}) {
    const o = { position: "right", ...options };
    const t = { ...STRINGS, ...o.strings };
    // The deployment answers only allowed origins (CORS): ask before
    // drawing anything, so a page that may not embed it fails closed.
    let config;
    try {
      const res = await fetch(`${BASE}/v1/client-config`, { credentials: "omit" });
      if (!res.ok) throw new Error(`status ${res.status}`);
      config = await res.json();
    } catch {
      console.error(`Confab widget: ${location.origin} may not embed the chat at ${BASE} ` +
        `(add it to the deployment's ALLOWED_ORIGINS). Nothing was loaded.`);
      return null;
    }
    if (!o.getToken && !config.visitors) {
      console.error("Confab widget: pass getToken (signed-in users) or turn on ALLOW_VISITORS at the deployment.");
      return null;
    }

    const host = document.createElement("div");
    host.setAttribute("data-confab-widget", "");
    // Open, not closed: a closed root would hide nothing from the page's
    // scripts (they run first and could wrap attachShadow), but would
    // hide the widget from test and accessibility tools.
    const root = host.attachShadow({ mode: "open" });
    const side = o.position === "left" ? "left" : "right";
    const style = document.createElement("style");
    style.textContent = `
:host{--confab-color:${/^#[0-9a-f]{3,8}$/i.test(o.color ?? "") ? o.color : "#3454d1"};--confab-z:2147483000;
 position:fixed;${side}:20px;bottom:20px;z-index:var(--confab-z);font:15px/1.4 system-ui,sans-serif}
button{width:56px;height:56px;border-radius:50%;border:0;background:var(--confab-color);color:#fff;cursor:pointer;
 box-shadow:0 4px 14px #0004;position:relative}
button:focus-visible{outline:3px solid #000;outline-offset:3px}
svg{width:28px;height:28px;fill:currentColor}
.badge{position:absolute;top:-4px;${side === "right" ? "left" : "right"}:-4px;min-width:20px;height:20px;border-radius:10px;
 background:#c62828;color:#fff;font-size:12px;line-height:20px;padding:0 5px;box-sizing:border-box}
.panel{position:absolute;bottom:72px;${side}:0;width:min(380px,calc(100vw - 40px));height:min(600px,calc(100vh - 112px));
 border-radius:12px;overflow:hidden;box-shadow:0 8px 30px #0005;background:#fff}
iframe{border:0;width:100%;height:100%}
[hidden]{display:none!important}
@media (max-width:480px){.panel{position:fixed;inset:0;width:auto;height:auto;border-radius:0}
 :host([data-open]) button{display:none}}`;
    const bubble = document.createElement("button");
    bubble.type = "button";
    bubble.setAttribute("aria-expanded", "false");
    bubble.setAttribute("aria-label", t.open);
    // A speech bubble, drawn (no image file, no markup parsed).
    const svgNs = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(svgNs, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(svgNs, "path");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
    svg.append(path);
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.hidden = true;
    bubble.append(svg, badge);
    const panel = document.createElement("div");
    panel.className = "panel";
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", o.title ?? "Chat");
    root.append(style, panel, bubble);
    (o.container ?? document.body).append(host);

    let frame = null;
    let ready = false;
    let unread = 0;
    const title = document.title;
    let flashTimer = null;
    const post = (msg) => ready && frame.contentWindow.postMessage(msg, BASE);
    const remember = (k, v) => {
      try {
        v == null ? sessionStorage.removeItem(`${KEY}.${k}`) : sessionStorage.setItem(`${KEY}.${k}`, v);
      } catch {}
    };
    const recalled = (k) => {
      try {
        return sessionStorage.getItem(`${KEY}.${k}`);
      } catch {
        return null;
      }
    };

    // What the panel keeps here when it may not keep it itself.
    function hostCopy() {
      const out = {};
      try {
        for (let i = 0; i < localStorage.length; i++) {
          const k = localStorage.key(i);
          if (k.startsWith(`${KEY}.host.`)) out[k.slice(KEY.length + 6)] = localStorage.getItem(k);
        }
      } catch {}
      return out;
    }

    function load() {
      if (frame) return;
      frame = document.createElement("iframe");
      frame.title = o.title ?? "Chat";
      frame.allow = "autoplay";
      frame.src = `${BASE}/widget#parent=${encodeURIComponent(location.origin)}`;
      panel.append(frame);
    }

    function showUnread(n) {
      unread = n;
      badge.hidden = n === 0;
      badge.textContent = n > 9 ? "9+" : String(n);
      bubble.setAttribute("aria-label", n ? `${t.open} (${n} ${t.unread})` : t.open);
      clearInterval(flashTimer);
      document.title = title;
      if (n === 0) return;
      let on = false;
      flashTimer = setInterval(() => {
        on = !on;
        document.title = on ? `(${n}) ${t.flash}` : title;
      }, 1000);
    }

    function chime() {
      if (o.sound === false) return;
      try {
        const ctx = (chime.ctx ??= new AudioContext());
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.frequency.value = 880;
        gain.gain.setValueAtTime(0.08, ctx.currentTime);
        gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.25);
        osc.connect(gain).connect(ctx.destination);
        osc.start();
        osc.stop(ctx.currentTime + 0.25);
      } catch {}
    }

    function open() {
      load();
      panel.hidden = false;
      host.setAttribute("data-open", "");
      bubble.setAttribute("aria-expanded", "true");
      bubble.setAttribute("aria-label", t.close);
      remember("open", "1");
      showUnread(0);
      post({ type: "confab:open" });
      frame.focus();
    }

    function close() {
      if (panel.hidden) return;
      panel.hidden = true;
      host.removeAttribute("data-open");
      bubble.setAttribute("aria-expanded", "false");
      remember("open", null);
      showUnread(unread);
      post({ type: "confab:hidden" });
      bubble.focus();
    }

    bubble.addEventListener("click", () => (panel.hidden ? open() : close()));
    host.addEventListener("keydown", (e) => e.key === "Escape" && close());

    async function onMessage(e) {
      // Only our own frame, at Confab's origin.
      if (!frame || e.source !== frame.contentWindow || e.origin !== BASE) return;
      const m = e.data ?? {};
      switch (m.type) {
        case "confab:ready":
          ready = true;
          post({
            type: "confab:init",
            signedIn: !!o.getToken,
            stored: hostCopy(),
            options: { title: o.title, greeting: o.greeting, color: o.color, fields: o.fields, require: o.require,
              strings: o.strings, prechat: o.prechat },
          });
          if (!panel.hidden) post({ type: "confab:open" });
          break;
        case "confab:token-request":
          try {
            post({ type: "confab:token", token: await o.getToken() });
          } catch (err) {
            console.error("Confab widget: getToken failed", err);
            post({ type: "confab:token", token: null });
          }
          break;
        case "confab:unread":
          if (panel.hidden && m.count > unread) chime();
          if (panel.hidden) showUnread(m.count);
          break;
        case "confab:visitor":
          if (typeof m.id === "string") {
            api.visitorId = m.id;
            o.onVisitor?.(m.id);
          }
          break;
        case "confab:active":
          remember("active", m.active ? "1" : null);
          break;
        case "confab:close":
          close();
          break;
        case "confab:store":
          // Only for a panel the browser denies storage of its own.
          if (typeof m.key === "string" && m.key.startsWith(KEY) && (m.value == null || String(m.value).length < 65536)) {
            try {
              m.value == null ? localStorage.removeItem(`${KEY}.host.${m.key}`) : localStorage.setItem(`${KEY}.host.${m.key}`, String(m.value));
            } catch {}
          }
          break;
      }
    }
    addEventListener("message", onMessage);
    const api = {
      open,
      close,
      /** The visitor's user id, once the panel has one (null for signed-in users). */
      visitorId: null,
      destroy() {
        removeEventListener("message", onMessage);
        showUnread(0);
        host.remove();
      },
    };

    // The same tab, a new page: the conversation goes on where it was.
    if (recalled("open")) open();
    else if (recalled("active")) load();

    return api;
  }

  window.Confab = { mount };
  // The no-code case: options from the tag's data- attributes.
  const d = script?.dataset ?? {};
  if (d.mount !== "manual") {
    const list = (v) => (v == null ? undefined : v.split(",").map((s) => s.trim()).filter(Boolean));
    const go = () => mount({
      title: d.title, greeting: d.greeting, color: d.color, position: d.position,
      fields: list(d.fields), require: list(d.require), prechat: d.prechat,
    }).then((w) => { window.Confab.widget = w; });
    document.body ? go() : addEventListener("DOMContentLoaded", go);
  }
})();
