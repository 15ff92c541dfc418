#!/usr/bin/env node
// Confab's local runtime: the built wasm worker in workerd (through Miniflare)
// with D1, KV and the session Durable Object, migrations applied, and a
// stand-in LLM on loopback. Used by `make dev` and by every e2e test.
//
// Prints one JSON line on stdout when ready:
//   {"event":"ready","url":"http://127.0.0.1:PORT","llm_url":"…","control_url":"…"}
// control_url is a loopback-only endpoint for tests and local debugging:
//   POST /d1 {"sql": "...", "params": [...], "binding": "DB"} runs raw SQL on
// one D1 binding (default: the first, the home shard); how tests prove what
// is stored at rest, and tamper with it;
//   GET /d1/bindings lists the D1 bindings (the shards), in wrangler.toml order;
//   POST /d1/fail, POST /d1/recover start and end a D1 outage of every shard
// (every query fails meanwhile; nothing is lost);
//   GET /r2?prefix=P lists the attachment bucket's objects under P, each as
// {key, size, base64}: how tests see what R2 holds at rest;
//   POST /reload restarts workerd with the same configuration, as a deploy
// does: the next request meets a new isolate that compiles and instantiates
// the wasm anew (the benchmark's warm-runtime cold start).
// Everything else (workerd's own output included) goes to stderr or --log.
//
// Options:
//   --port N           worker port (default $PORT or 0 = any free port)
//   --host H           bind address (default 127.0.0.1)
//   --persist DIR      keep D1/KV/R2/DO state in DIR across restarts
//   --var K=V          override a [vars] value (repeatable)
//   --dev              development mode: ENVIRONMENT=development and .dev.vars
//   --no-migrations    do not apply migrations/ (tests readiness failures)
//   --omit-binding B   leave binding B (DB, KV) out (tests readiness failures)
//   --llm-port N       port of the stand-in LLM / identity provider (default any)
//   --ratelimit B=N    set rate-limit binding B's limit to N per its period
//   --log FILE         also append workerd's output to FILE
//   --exit-with-stdin  shut down when stdin closes (the parent died)
//   --kv-no-delete     test only: KV deletes do nothing (standins/kv-no-delete.mjs)
//   --d1-latency-ms N  every D1 call waits N ms, as from a distant primary (standins/d1-latency.mjs)
import { Miniflare } from "miniflare";
import { parse as parseToml } from "smol-toml";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startLlmStandin } from "./standins/llm.mjs";
import { startDemo } from "./demo.mjs";
import { AI_BINDING_SCRIPT } from "./standins/ai-binding.mjs";
import { KV_NO_DELETE_SCRIPT } from "./standins/kv-no-delete.mjs";
import { D1_LATENCY_SCRIPT } from "./standins/d1-latency.mjs";
import { devAssistantVars } from "./devvars.mjs";
import { applyMigrations } from "./migrations.mjs";
import http from "node:http";
import net from "node:net";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function parseArgs(argv) {
  const opts = { vars: {}, ratelimits: {}, omit: new Set(), port: Number(process.env.PORT ?? 0), host: "127.0.0.1" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--port": opts.port = Number(value()); break;
      case "--host": opts.host = value(); break;
      case "--persist": opts.persist = path.resolve(value()); break;
      case "--var": {
        const kv = value();
        const eq = kv.indexOf("=");
        if (eq < 1) fail(`--var expects K=V, got ${kv}`);
        opts.vars[kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case "--ratelimit": {
        const kv = value();
        const eq = kv.indexOf("=");
        const n = Number(kv.slice(eq + 1));
        if (eq < 1 || !Number.isInteger(n) || n < 1) fail(`--ratelimit expects B=N, got ${kv}`);
        opts.ratelimits[kv.slice(0, eq)] = n;
        break;
      }
      case "--llm-port": opts.llmPort = Number(value()); break;
      case "--dev": opts.dev = true; break;
      case "--no-migrations": opts.noMigrations = true; break;
      case "--omit-binding": opts.omit.add(value()); break;
      case "--log": opts.log = path.resolve(value()); break;
      case "--exit-with-stdin": opts.exitWithStdin = true; break;
      case "--kv-no-delete": opts.kvNoDelete = true; break;
      case "--d1-latency-ms": opts.d1LatencyMs = Number(value()); break;
      default: fail(`unknown option ${a}`);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) fail("--port must be 0..65535");
  if (opts.d1LatencyMs !== undefined && !(Number.isInteger(opts.d1LatencyMs) && opts.d1LatencyMs >= 0)) {
    fail("--d1-latency-ms takes a whole number of milliseconds");
  }
  return opts;
}

function fail(msg) {
  console.error(`harness: ${msg}`);
  process.exit(2);
}

/** KEY=VALUE lines, as wrangler reads .dev.vars. */
function readDotVars(file) {
  if (!fs.existsSync(file)) return {};
  const out = {};
  for (const line of fs.readFileSync(file, "utf8").split(/\r?\n/)) {
    const m = line.match(/^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\s*$/);
    if (!m) continue;
    out[m[1]] = m[2].replace(/^(["'])(.*)\1$/, "$2");
  }
  return out;
}

// A fixed, local `cf` object: Miniflare would otherwise download one.
const LOCAL_CF = {
  colo: "LCL",
  country: "XX",
  city: "Localhost",
  continent: "XX",
  timezone: "UTC",
  httpProtocol: "HTTP/1.1",
  tlsVersion: "",
  asn: 0,
  asOrganization: "loopback",
};

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const wrangler = parseToml(fs.readFileSync(path.join(root, "wrangler.toml"), "utf8"));
  const script = path.join(root, wrangler.main);
  if (!fs.existsSync(script)) fail(`${wrangler.main} is missing: build first (make build)`);

  const llm = await startLlmStandin({ host: "127.0.0.1", port: opts.llmPort ?? 0 });

  const bindings = { ...(wrangler.vars ?? {}) };
  if (opts.dev) {
    bindings.ENVIRONMENT = "development";
    // A webhook receiver on this machine is plain http (README "Webhooks").
    bindings.WEBHOOK_ALLOW_HTTP = "on";
    // Link previews, with the stand-in site (`{llm_url}/site/article`)
    // reachable although it is on loopback (README "Link previews").
    bindings.LINK_PREVIEWS = "on";
    bindings.LINK_PREVIEW_ALLOW_ORIGINS = "{llm_url}";
    // The demo site's widget lets people chat as visitors (docs/client.md).
    bindings.ALLOW_VISITORS = "on";
    const dotVars = readDotVars(path.join(root, ".dev.vars"));
    Object.assign(bindings, devAssistantVars(dotVars), dotVars);
  }
  Object.assign(bindings, opts.vars);
  // The local runtime serves its own loopback address and nothing else: a
  // DNS-rebinding page (Host: evil.example) is refused with 421. The port
  // must be known for that, so pick one now when asked for any.
  const pickedPort = !opts.port;
  if (pickedPort) opts.port = await freePort(opts.host);
  const ownOrigins = !("PUBLIC_ORIGINS" in bindings);
  const setOwnOrigins = () => {
    if (ownOrigins) bindings.PUBLIC_ORIGINS = `http://${opts.host}:${opts.port},http://localhost:${opts.port}`;
  };
  setOwnOrigins();
  // `{llm_url}` in any value stands for the stand-in LLM's address.
  for (const [k, v] of Object.entries(bindings)) {
    if (typeof v === "string") bindings[k] = v.replaceAll("{llm_url}", llm.url);
  }

  const d1 = (wrangler.d1_databases ?? []).filter((d) => !opts.omit.has(d.binding));
  const kv = (wrangler.kv_namespaces ?? []).filter((k) => !opts.omit.has(k.binding));
  const r2 = (wrangler.r2_buckets ?? []).filter((b) => !opts.omit.has(b.binding));
  const durableObjects = {};
  for (const d of wrangler.durable_objects?.bindings ?? []) {
    if (!opts.omit.has(d.name)) durableObjects[d.name] = { className: d.class_name, useSQLite: true };
  }

  const ratelimits = {};
  for (const r of wrangler.ratelimits ?? []) {
    if (opts.omit.has(r.name)) continue;
    const limit = opts.ratelimits[r.name] ?? r.simple.limit;
    ratelimits[r.name] = { namespace_id: r.namespace_id, simple: { limit, period: r.simple.period } };
  }

  let logStream = opts.log ? fs.createWriteStream(opts.log, { flags: "a" }) : null;
  const persist = (sub) => (opts.persist ? path.join(opts.persist, sub) : false);

  const options = {
    host: opts.host,
    port: opts.port,
    cf: LOCAL_CF,
    d1Persist: persist("d1"),
    kvPersist: persist("kv"),
    r2Persist: persist("r2"),
    durableObjectsPersist: persist("do"),
    // Each console line arrives whole and at once (raw stdio from a pipe is
    // block-buffered, so recent lines could lag behind).
    handleStructuredLogs({ message }) {
      const line = message.endsWith("\n") ? message : message + "\n";
      process.stderr.write(line);
      logStream?.write(line);
    },
    workers: [
      {
        name: wrangler.name,
        scriptPath: script,
        modules: true,
        modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
        compatibilityDate: wrangler.compatibility_date,
        compatibilityFlags: wrangler.compatibility_flags ?? [],
        bindings,
        // With --d1-latency-ms the worker's D1 bindings are wrapped (see
        // standins/d1-latency.mjs); the databases themselves are the same.
        d1Databases: opts.d1LatencyMs ? {} : Object.fromEntries(d1.map((d) => [d.binding, d.database_id])),
        // With --kv-no-delete the worker's KV bindings are wrapped (see
        // standins/kv-no-delete.mjs); the namespaces themselves are the same.
        kvNamespaces: opts.kvNoDelete ? {} : Object.fromEntries(kv.map((k) => [k.binding, k.id])),
        r2Buckets: Object.fromEntries(r2.map((b) => [b.binding, b.bucket_name])),
        durableObjects,
        ratelimits,
        // Queues run inside Miniflare (webhooks: README "Webhooks").
        queueProducers: Object.fromEntries(
          (wrangler.queues?.producers ?? [])
            .filter((p) => !opts.omit.has(p.binding))
            .map((p) => [p.binding, { queueName: p.queue }]),
        ),
        queueConsumers: Object.fromEntries(
          (wrangler.queues?.consumers ?? []).map((c) => [
            c.queue,
            {
              maxBatchSize: c.max_batch_size,
              maxBatchTimeout: c.max_batch_timeout,
              maxRetries: c.max_retries,
              deadLetterQueue: c.dead_letter_queue,
            },
          ]),
        ),
        // Static assets (the web client) answer first; other paths reach the worker.
        ...(wrangler.assets?.directory
          ? {
              assets: {
                directory: path.join(root, wrangler.assets.directory),
                ...(wrangler.assets.binding ? { binding: wrangler.assets.binding } : {}),
                routerConfig: {
                  has_user_worker: true,
                  // `run_worker_first = [paths]`: these reach the worker before assets.
                  ...(Array.isArray(wrangler.assets.run_worker_first)
                    ? { static_routing: { user_worker: wrangler.assets.run_worker_first } }
                    : {}),
                },
              },
            }
          : {}),
        // Workers AI cannot run offline: the binding is a local stand-in.
        wrappedBindings: {
          ...(wrangler.ai?.binding && !opts.omit.has(wrangler.ai.binding)
            ? { [wrangler.ai.binding]: { scriptName: "ai-standin" } }
            : {}),
          ...(opts.kvNoDelete
            ? Object.fromEntries(kv.map((k) => [k.binding, { scriptName: `kv-no-delete-${k.binding}` }]))
            : {}),
          ...(opts.d1LatencyMs
            ? Object.fromEntries(d1.map((d) => [d.binding, { scriptName: `d1-latency-${d.binding}` }]))
            : {}),
        },
      },
      { name: "ai-standin", modules: true, script: AI_BINDING_SCRIPT, bindings: { LLM_URL: llm.url } },
      ...(opts.kvNoDelete
        ? kv.map((k) => ({
            name: `kv-no-delete-${k.binding}`,
            modules: true,
            script: KV_NO_DELETE_SCRIPT,
            kvNamespaces: { INNER: k.id },
          }))
        : []),
      ...(opts.d1LatencyMs
        ? d1.map((d) => ({
            name: `d1-latency-${d.binding}`,
            modules: true,
            script: D1_LATENCY_SCRIPT,
            d1Databases: { INNER: d.database_id },
            bindings: { LATENCY_MS: String(opts.d1LatencyMs) },
          }))
        : []),
    ],
  };

  // Migrate before anyone can connect: start on a private port, apply the
  // migrations, then move to the requested port. Otherwise a client polling
  // the port could be served by a worker whose schema is not there yet.
  const mf = await startMigrated(options, opts, d1);
  // A port picked here can be taken by another process before Miniflare
  // binds it (tests start several runtimes at once): pick again.
  for (let attempt = 1; ; attempt++) {
    try {
      await mf.setOptions(options);
      break;
    } catch (e) {
      if (!pickedPort || e?.code !== "ERR_ADDRESS_IN_USE" || attempt >= 5) throw e;
      opts.port = options.port = await freePort(opts.host);
      setOwnOrigins();
    }
  }
  const url = await mf.ready;

  let stopping = false;
  const shutdown = async (why) => {
    if (stopping) return;
    stopping = true;
    console.error(`harness: shutting down (${why})`);
    await Promise.allSettled([mf.dispose(), llm.close(), control.close()]);
    logStream?.end();
    process.exit(0);
  };
  // Miniflare's exit hook answers signals with an immediate exit(128+n);
  // replace it so a signal disposes workerd first and exits 0. Its 'exit'
  // hook stays as the backstop that kills workerd on any other exit.
  process.removeAllListeners("SIGTERM");
  process.removeAllListeners("SIGINT");
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  if (opts.exitWithStdin) {
    process.stdin.on("end", () => shutdown("stdin closed"));
    process.stdin.on("error", () => shutdown("stdin error"));
    process.stdin.resume();
  }

  const control = await startControl(mf, opts, d1.map((d) => d.binding), () => mf.setOptions(options), r2[0]?.binding);
  const origin = url.origin;
  process.stdout.write(JSON.stringify({ event: "ready", url: origin, llm_url: llm.url, control_url: control.url }) + "\n");
  if (opts.dev) {
    // A sample product site on another origin (localhost, the port after
    // Confab's), with the widget embedded.
    const demo = await startDemo({ confab: origin, port: Number(url.port) + 1 }).catch(() => startDemo({ confab: origin }));
    console.error(`\n  Confab is running at ${origin}\n  chat: ${origin}/   admin console: ${origin}/admin\n` +
      `  demo site with the widget: ${demo.url}/\n  stand-in LLM: ${llm.url}\n  state: ${opts.persist ?? "in memory"}\n`);
  }
}

/**
 * A Miniflare on a private port with the migrations applied. Miniflare's
 * Node-side D1 proxy makes `prepare` a synchronous call across threads, and
 * under load (several runtimes starting at once) it has been seen to read
 * another call's answer and fail an internal assertion. That happens before
 * any batch runs, and a migration batch is one transaction, so nothing is
 * half-applied: the proxy is not trusted again, and a fresh instance
 * migrates anew.
 */
async function startMigrated(options, opts, d1) {
  for (let attempt = 1; ; attempt++) {
    const mf = new Miniflare({ ...options, port: 0 });
    try {
      await mf.ready;
      if (!opts.noMigrations) {
        for (const d of d1) {
          const db = await realD1(mf, opts, d.binding);
          const applied = await applyMigrations(db, path.join(root, d.migrations_dir ?? "migrations"));
          if (applied.length) console.error(`harness: applied migrations ${applied.join(", ")} to ${d.binding}`);
        }
      }
      return mf;
    } catch (e) {
      await mf.dispose().catch(() => {});
      const proxyRace = e?.code === "ERR_ASSERTION" && String(e?.stack).includes("SynchronousFetcher");
      if (!proxyRace || attempt >= 3) throw e;
      console.error(`harness: Miniflare's D1 proxy failed while migrating (attempt ${attempt}); starting afresh`);
    }
  }
}

/** A port free on `host` right now. */
function freePort(host) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The real local database behind `binding` (not the latency wrapper). */
function realD1(mf, opts, binding) {
  return opts.d1LatencyMs ? mf.getD1Database("INNER", `d1-latency-${binding}`) : mf.getD1Database(binding);
}

/** Tables renamed away during a simulated outage get this suffix. */
const DOWN = "__d1_outage";

/**
 * A D1 outage, as the worker sees one: every query fails. Made by renaming
 * every table away (SQLite carries indexes, triggers and foreign keys
 * along) and back. Nothing is lost; `recover` restores the schema as it was.
 */
async function outage(db, on) {
  const { results } = await db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations'")
    .all();
  for (const { name } of results) {
    const down = name.endsWith(DOWN);
    if (on && !down) await db.prepare(`ALTER TABLE "${name}" RENAME TO "${name}${DOWN}"`).run();
    if (!on && down) await db.prepare(`ALTER TABLE "${name}" RENAME TO "${name.slice(0, -DOWN.length)}"`).run();
  }
}

/** The loopback control endpoint (see the header). */
function startControl(mf, opts, bindings, reload, bucket) {
  const server = http.createServer(async (req, res) => {
    const reply = (status, body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method === "GET" && req.url === "/d1/bindings") return reply(200, { bindings });
      if (req.method === "GET" && req.url.startsWith("/r2?") && bucket) {
        const prefix = new URL(req.url, "http://control").searchParams.get("prefix") ?? "";
        const r2 = await mf.getR2Bucket(bucket);
        const objects = [];
        for (const o of (await r2.list({ prefix })).objects) {
          const body = await r2.get(o.key);
          const bytes = Buffer.from(await body.arrayBuffer());
          objects.push({ key: o.key, size: o.size, base64: bytes.toString("base64") });
        }
        return reply(200, { objects });
      }
      if (req.method === "POST" && req.url === "/reload") {
        await reload();
        return reply(200, { reloaded: true });
      }
      if (req.method !== "POST" || !bindings.length) return reply(404, { error: "not found" });
      if (req.url === "/d1/fail" || req.url === "/d1/recover") {
        for (const b of bindings) await outage(await realD1(mf, opts, b), req.url === "/d1/fail");
        return reply(200, { d1: req.url === "/d1/fail" ? "failing" : "serving" });
      }
      if (req.url !== "/d1") return reply(404, { error: "not found" });
      let raw = "";
      for await (const chunk of req) raw += chunk;
      const { sql, params = [], binding = bindings[0] } = JSON.parse(raw);
      if (!bindings.includes(binding)) return reply(400, { error: `no D1 binding ${binding}` });
      const db = await realD1(mf, opts, binding);
      const result = await db.prepare(sql).bind(...params).all();
      reply(200, { results: result.results, changes: result.meta?.changes ?? 0 });
    } catch (e) {
      reply(400, { error: String(e?.message ?? e) });
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

main().catch((e) => {
  console.error(`harness: ${e?.stack ?? e}`);
  process.exit(1);
});
