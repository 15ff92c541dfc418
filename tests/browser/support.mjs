// Shared by the browser tests: start the real worker in workerd through the
// harness, and Debian's Chromium through playwright-core.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(path.join(root, "miniflare/package.json"));
const { chromium } = require("playwright-core");
export const artifacts = path.join(root, "target/browser-artifacts");
fs.mkdirSync(artifacts, { recursive: true });

export const TEST_SECRET = "confab-browser-test-secret-0123456789";
/** What every browser-test runtime is started with (tests add or override). */
export const BASE_VARS = {
  JWT_HS256_SECRET: TEST_SECRET,
  ENCRYPTION_KEYS: "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
  ENCRYPTION_ACTIVE_KEY_ID: "k1",
  RATE_MESSAGES_PER_MINUTE: "0",
};

/** Starts the harness; resolves to {url, llm_url, stop()}. `name` names its log files. */
export async function startHarness(name, vars) {
  const args = [path.join(root, "miniflare/harness.mjs"), "--port", "0", "--exit-with-stdin",
    "--log", path.join(artifacts, `${name}.workerd.log`)];
  for (const [k, v] of Object.entries({ ...BASE_VARS, ...vars })) args.push("--var", `${k}=${v}`);
  const child = spawn(process.execPath, args, {
    stdio: ["pipe", "pipe", fs.openSync(path.join(artifacts, `${name}.harness.stderr`), "w")],
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
  });
  const line = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout });
    rl.once("line", resolve);
    child.once("exit", (c) => reject(new Error(`harness exited ${c}`)));
  });
  const ready = JSON.parse(line);
  return {
    url: ready.url,
    llm_url: ready.llm_url,
    stop() {
      child.stdin.end();
      child.kill("SIGTERM");
    },
  };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    // No network beyond loopback here: keep Chromium from trying.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
}

/**
 * A new context and page. Uncaught page errors are collected in `errors`;
 * tests assert it stays empty. `bypassCSP` turns the page's CSP off, so a
 * test can show the pages are safe without it.
 */
export async function newPage(browser, { viewport = { width: 1200, height: 860 }, bypassCSP = false } = {}) {
  const context = await browser.newContext({ viewport, bypassCSP });
  const page = await context.newPage();
  const errors = [];
  page.on("dialog", (d) => d.accept());
  page.on("pageerror", (e) => errors.push(e.message));
  return { context, page, errors };
}

function b64url(s) {
  return Buffer.from(s).toString("base64url");
}

/** An HS256 token signed with the test secret (what an app's backend mints). */
export async function hs256(claims, secret = TEST_SECRET) {
  const { createHmac } = await import("node:crypto");
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/** A token nobody signed (`alg: none`): what a crafted link can carry. */
export function unsigned(claims) {
  return `${b64url(JSON.stringify({ alg: "none" }))}.${b64url(JSON.stringify(claims))}.`;
}
