// Local stand-ins for the LLM vendors Confab calls over HTTP. One loopback
// server speaks each vendor's real wire format, chosen by path:
//
//   POST /v1/chat/completions                       OpenAI-compatible Chat Completions
//   POST /v1/messages                               Anthropic Messages
//   POST /v1beta/models/{model}:streamGenerateContent?alt=sse   Google Gemini
//   POST /_standin/workers-ai/{model}               Workers AI `run` output, for the AI
//                                                   binding stand-in (ai-binding.mjs)
//
// Streaming is Server-Sent Events exactly as each vendor sends them
// (Gemini with CRLF line endings). Nothing here calls out.
//
// Tests script it per model name, so parallel tests never collide:
// It also plays an identity provider's JWKS endpoint (for JWT_JWKS_URL):
//   GET    /jwks.json                 the current document (or the scripted status)
//   POST   /_standin/jwks  {"jwks": {...}, "status": 200}   what /jwks.json serves
//   GET    /_standin/jwks/hits        → {"hits": N, "traceparent"}, fetches of /jwks.json so far
//                                        and the last one's traceparent header
//
// And a web site for link previews, under /site/ (site.mjs).
//
// And Cloudflare Turnstile's siteverify (form-encoded `secret`, `response`,
// `remoteip`; the answer as Cloudflare's API gives it):
//   POST   /turnstile/v0/siteverify   success for a response starting "pass"
//                                     with the secret "standin-turnstile-secret";
//                                     "unavailable" answers 500, "hang" never answers
//   GET    /_standin/turnstile        → [{response, remoteip}, ...] checked so far
//
//   POST   /_standin/script   {"model": "m-x", "steps": [STEP, ...]}
//   GET    /_standin/requests?model=m-x   → [{vendor, path, headers, body}, ...]
// Each request for that model takes the next STEP (none left: a normal reply):
//   {"status": 429, "retry_after": "1"}   an HTTP error with the vendor's error body
//   {"text": "..."}                       the reply text (default: echoes the prompt)
//   {"repeat": 500}                       a very long reply (500 pieces)
//   {"delay_ms": 20}                      pause between pieces
//   {"first_token_delay_ms": 3000}        pause before the first piece
//   {"cut_after": 3}                      drop the connection after 3 pieces
//   {"stall_after": 3}                    send 3 pieces, then nothing (connection kept open)
//   {"malformed_after": 2}                send a non-JSON event after 2 pieces
//   {"hang": true}                        accept, then never answer
//   {"tool_calls": [{"name": "lookup_order", "arguments": {"order": "A-1"}}, ...]}
//                                         ask for these function calls (in parallel), after
//                                         `text` if the step has one, in the vendor's own
//                                         stream format (arguments in two fragments where it
//                                         streams them; Workers AI in its binding's own
//                                         `tool_calls` list, ended by an entry of nulls)
//   {"usage": {"input": 900, "output": 40}}  report these token counts (default: estimated
//                                         from the prompt's and the reply's length)
//   {"cached_tokens": 40}                 report 40 of the prompt's tokens as read from
//                                         the vendor's prompt cache, in its own fields
import http from "node:http";
import { site } from "./site.mjs";

export function replyFor(body) {
  const text = lastUserText(body);
  return `Stand-in assistant here. You said: ${text}`;
}

function lastUserText(body) {
  // OpenAI / Anthropic: messages; Gemini: contents.
  const msgs = body?.messages ?? body?.contents ?? [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    if (m.role !== "user") continue;
    if (typeof m.content === "string") return m.content;
    if (Array.isArray(m.parts)) return m.parts.map((p) => p.text ?? "").join("");
    if (Array.isArray(m.content)) return m.content.map((p) => p.text ?? "").join("");
  }
  return "";
}

/** Splits text into pieces the way vendors stream it: word by word, keeping spaces. */
export function pieces(text) {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

const estimate = (s) => Math.max(1, Math.ceil(s.length / 4));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Each vendor's framing of a stream and of an error. */
const vendors = {
  openai: {
    start: () => [],
    piece: (ctx, text) => [{ data: chunk(ctx, { content: text }, null) }],
    calls: (ctx, calls) => calls.flatMap((c, index) => {
      const [a, b] = halves(JSON.stringify(c.arguments ?? {}));
      const call = (fields) => ({ data: chunk(ctx, { tool_calls: [{ index, ...fields }] }, null) });
      return [
        call({ id: c.id ?? `call_${index}`, type: "function", function: { name: c.name, arguments: "" } }),
        call({ function: { arguments: a } }),
        call({ function: { arguments: b } }),
      ];
    }),
    end: (ctx) => [
      { data: chunk(ctx, {}, ctx.calls ? "tool_calls" : "stop") },
      { data: { id: ctx.id, object: "chat.completion.chunk", created: ctx.created, model: ctx.model, choices: [], usage: ctx.usage() } },
      { raw: "[DONE]" },
    ],
    error: (status) => ({ error: { message: `stand-in error ${status}`, type: status === 429 ? "rate_limit_error" : "server_error" } }),
  },
  anthropic: {
    start: (ctx) => [
      { event: "message_start", data: { type: "message_start", message: { id: ctx.id, type: "message", role: "assistant", content: [], model: ctx.model, stop_reason: null, stop_sequence: null, usage: { input_tokens: ctx.inputTokens - ctx.cached, output_tokens: 1, ...(ctx.cached ? { cache_read_input_tokens: ctx.cached } : {}) } } } },
      { event: "content_block_start", data: { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } } },
      { event: "ping", data: { type: "ping" } },
    ],
    piece: (_ctx, text) => [{ event: "content_block_delta", data: { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } } }],
    // The text block ends first; each call is a `tool_use` block after it.
    calls: (_ctx, calls) => [
      { event: "content_block_stop", data: { type: "content_block_stop", index: 0 } },
      ...calls.flatMap((c, i) => {
        const index = i + 1;
        const [a, b] = halves(JSON.stringify(c.arguments ?? {}));
        const delta = (partial_json) => ({ event: "content_block_delta", data: { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json } } });
        return [
          { event: "content_block_start", data: { type: "content_block_start", index, content_block: { type: "tool_use", id: c.id ?? `toolu_${index}`, name: c.name, input: {} } } },
          delta(a), delta(b),
          { event: "content_block_stop", data: { type: "content_block_stop", index } },
        ];
      }),
    ],
    end: (ctx) => [
      ...(ctx.calls ? [] : [{ event: "content_block_stop", data: { type: "content_block_stop", index: 0 } }]),
      { event: "message_delta", data: { type: "message_delta", delta: { stop_reason: ctx.calls ? "tool_use" : "end_turn", stop_sequence: null }, usage: { output_tokens: ctx.outputTokens } } },
      { event: "message_stop", data: { type: "message_stop" } },
    ],
    error: (status) => ({ type: "error", error: { type: status === 429 ? "rate_limit_error" : status === 529 ? "overloaded_error" : "api_error", message: `stand-in error ${status}` } }),
  },
  // Workers AI's streaming `run` output, served to the AI binding stand-in.
  workers_ai: {
    start: () => [],
    piece: (_ctx, text) => [{ data: { response: text, p: "abcdefghijklmnop" } }],
    // The binding's own shape: a `tool_calls` list beside `response`, the
    // entries like OpenAI's deltas, then an entry of nulls.
    calls: (_ctx, calls) => [
      ...calls.flatMap((c, index) => {
        const [a, b] = halves(JSON.stringify(c.arguments ?? {}));
        const call = (fields) => ({ data: { response: "", tool_calls: [{ index, ...fields }] } });
        return [
          call({ id: c.id ?? `chatcmpl-tool-${index}`, type: "function", function: { name: c.name, arguments: "" } }),
          call({ function: { arguments: a } }),
          call({ function: { arguments: b } }),
        ];
      }),
      { data: { response: "", tool_calls: [{ id: null, type: null, function: { name: null, arguments: null } }] } },
    ],
    end: (ctx) => [{ data: { response: "", usage: ctx.usage() } }, { raw: "[DONE]" }],
    error: (status) => ({ errors: [{ message: `stand-in error ${status}`, code: 3040 }] }),
  },
  gemini: {
    start: () => [],
    piece: (ctx, text, last) => [
      {
        data: {
          candidates: [{ content: { parts: [{ text }], role: "model" }, ...(last ? { finishReason: "STOP" } : {}), index: 0 }],
          usageMetadata: last
            ? { promptTokenCount: ctx.inputTokens, candidatesTokenCount: ctx.outputTokens, totalTokenCount: ctx.inputTokens + ctx.outputTokens, ...(ctx.cached ? { cachedContentTokenCount: ctx.cached } : {}) }
            : { promptTokenCount: ctx.inputTokens, totalTokenCount: ctx.inputTokens },
          modelVersion: ctx.model,
        },
      },
    ],
    // Every call whole in one event, which also ends the stream.
    calls: (ctx, calls) => [
      {
        data: {
          candidates: [{ content: { parts: calls.map((c) => ({ functionCall: { name: c.name, args: c.arguments ?? {} } })), role: "model" }, finishReason: "STOP", index: 0 }],
          usageMetadata: { promptTokenCount: ctx.inputTokens, candidatesTokenCount: ctx.outputTokens, totalTokenCount: ctx.inputTokens + ctx.outputTokens },
          modelVersion: ctx.model,
        },
      },
    ],
    end: () => [],
    error: (status) => ({ error: { code: status, message: `stand-in error ${status}`, status: status === 429 ? "RESOURCE_EXHAUSTED" : "UNAVAILABLE" } }),
    crlf: true,
  },
};

/** A JSON text in two pieces, as vendors stream a call's arguments. */
function halves(s) {
  const at = Math.floor(s.length / 2);
  return [s.slice(0, at), s.slice(at)];
}

function chunk(ctx, delta, finish_reason) {
  return { id: ctx.id, object: "chat.completion.chunk", created: ctx.created, model: ctx.model, choices: [{ index: 0, delta, finish_reason }] };
}

function route(method, pathname) {
  if (method !== "POST") return null;
  if (pathname === "/v1/chat/completions") return { vendor: "openai" };
  if (pathname === "/v1/messages") return { vendor: "anthropic" };
  const m = pathname.match(/^\/v1beta\/models\/([^/:]+):streamGenerateContent$/);
  if (m) return { vendor: "gemini", model: decodeURIComponent(m[1]) };
  const w = pathname.match(/^\/_standin\/workers-ai\/(.+)$/);
  if (w) return { vendor: "workers_ai", model: decodeURIComponent(w[1]) };
  return null;
}

export function startLlmStandin({ host = "127.0.0.1", port = 0, tokenDelayMs = 15 } = {}) {
  const requests = [];
  const turnstile = [];
  const scripts = new Map();
  const sockets = new Set();
  let served = 0;
  const jwks = { doc: { keys: [] }, status: 200, hits: 0, traceparent: null };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://standin");
    let raw = "";
    for await (const c of req) raw += c;
    const json = (status, obj, headers = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(obj));
    };

    if (url.pathname === "/_standin/script" && req.method === "POST") {
      const { model, steps } = JSON.parse(raw || "{}");
      if (!model || !Array.isArray(steps)) return json(400, { error: "need model and steps" });
      scripts.set(model, [...steps]);
      return json(200, { ok: true });
    }
    if (url.pathname === "/jwks.json" && req.method === "GET") {
      jwks.hits++;
      jwks.traceparent = req.headers.traceparent ?? null;
      if (jwks.status !== 200) return json(jwks.status, { error: "identity provider down" });
      return json(200, jwks.doc, { "cache-control": "max-age=300" });
    }
    if (url.pathname === "/_standin/jwks" && req.method === "POST") {
      const body = JSON.parse(raw || "{}");
      if (body.jwks) jwks.doc = body.jwks;
      jwks.status = body.status ?? 200;
      return json(200, { ok: true });
    }
    if (url.pathname === "/_standin/jwks/hits" && req.method === "GET") {
      return json(200, { hits: jwks.hits, traceparent: jwks.traceparent });
    }
    if (url.pathname === "/turnstile/v0/siteverify" && req.method === "POST") {
      const form = new URLSearchParams(raw);
      const response = form.get("response") ?? "";
      turnstile.push({ response, remoteip: form.get("remoteip") });
      if (response === "unavailable") return json(500, { error: "stand-in outage" });
      if (response === "hang") return; // never answered: the worker's timeout must act
      const errors = [];
      if (form.get("secret") !== "standin-turnstile-secret") errors.push("invalid-input-secret");
      if (!response.startsWith("pass")) errors.push("invalid-input-response");
      return json(200, errors.length
        ? { success: false, "error-codes": errors, messages: [] }
        : { success: true, challenge_ts: new Date().toISOString(), hostname: "localhost", "error-codes": [], action: "", cdata: "" });
    }
    if (url.pathname === "/_standin/turnstile" && req.method === "GET") return json(200, turnstile);
    // The stand-in web site for link previews (site.mjs).
    if (req.method === "GET" && (await site(url, res))) return;
    if (url.pathname === "/_standin/requests" && req.method === "GET") {
      const model = url.searchParams.get("model");
      return json(200, requests.filter((r) => !model || r.model === model));
    }

    const r = route(req.method, url.pathname);
    if (!r) return json(404, { error: { message: "not found" } });
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      return json(400, { error: { message: "invalid JSON body" } });
    }
    const model = r.model ?? body.model ?? "standin-1";
    requests.push({ vendor: r.vendor, path: url.pathname + url.search, model, headers: req.headers, body });
    const step = scripts.get(model)?.shift() ?? {};
    const v = vendors[r.vendor];

    if (step.hang) return; // never answered; the client's timeout must act
    if (step.status) {
      const headers = step.retry_after !== undefined ? { "retry-after": String(step.retry_after) } : {};
      return json(step.status, v.error(step.status), headers);
    }

    const calls = Array.isArray(step.tool_calls) && step.tool_calls.length ? step.tool_calls : null;
    const text = step.text ?? (calls ? "" : step.repeat ? "lorem ipsum ".repeat(step.repeat) : replyFor(body));
    const parts = pieces(text);
    const inputTokens = step.usage?.input ?? estimate(JSON.stringify(body.messages ?? body.contents ?? []));
    const outputTokens = step.usage?.output ?? estimate(text);
    const cached = Math.min(step.cached_tokens ?? 0, inputTokens);
    const ctx = {
      id: `standin-${++served}`,
      created: Math.floor(Date.now() / 1000),
      model,
      inputTokens,
      outputTokens,
      cached,
      calls,
      usage: () => ({
        prompt_tokens: inputTokens, completion_tokens: outputTokens, total_tokens: inputTokens + outputTokens,
        ...(cached ? { prompt_tokens_details: { cached_tokens: cached } } : {}),
      }),
    };

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    // Vendors answer with headers at once and stream the body after.
    res.flushHeaders();
    const nl = v.crlf ? "\r\n" : "\n";
    const write = (e) => {
      if (res.destroyed) return;
      let s = "";
      if (e.event) s += `event: ${e.event}${nl}`;
      s += `data: ${e.raw ?? JSON.stringify(e.data)}${nl}${nl}`;
      res.write(s);
    };
    const delay = step.delay_ms ?? tokenDelayMs;
    v.start(ctx).forEach(write);
    if (step.first_token_delay_ms) await sleep(step.first_token_delay_ms);
    for (let i = 0; i < parts.length; i++) {
      if (res.destroyed) return;
      if (step.cut_after !== undefined && i >= step.cut_after) {
        res.socket?.destroy();
        return;
      }
      if (step.stall_after !== undefined && i >= step.stall_after) {
        // A provider that stops mid-stream without closing: only the
        // client's idle timeout ends it.
        await new Promise((r) => res.on("close", r));
        return;
      }
      if (step.malformed_after !== undefined && i === step.malformed_after) {
        res.write(`data: {"this is": not json${nl}${nl}`);
        res.end();
        return;
      }
      // Gemini marks its last text piece as the end, unless calls follow.
      v.piece(ctx, parts[i], i === parts.length - 1 && !calls).forEach(write);
      if (delay > 0 && i < parts.length - 1) await sleep(delay);
    }
    if (calls) v.calls(ctx, calls).forEach(write);
    v.end(ctx).forEach(write);
    res.end();
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      resolve({
        url: `http://${host}:${server.address().port}`,
        requests,
        close: () =>
          new Promise((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
