// A local stand-in for an OpenAI-compatible Chat Completions server.
// It speaks the real wire format: JSON for `stream: false`, and for
// `stream: true` Server-Sent Events of `chat.completion.chunk` objects ending
// with `data: [DONE]`. It never calls out; tests and `make dev` point Confab
// at it instead of a vendor.
import http from "node:http";

/** The reply the stand-in gives: deterministic, derived from the prompt. */
export function replyFor(messages) {
  const lastUser = [...(messages ?? [])].reverse().find((m) => m.role === "user");
  const said = typeof lastUser?.content === "string" ? lastUser.content : "";
  return `Stand-in assistant here. You said: ${said}`;
}

/** Splits text into stream pieces the way vendors do: word by word, keeping spaces. */
export function pieces(text) {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

function estimateTokens(text) {
  return Math.max(1, Math.ceil(text.length / 4));
}

export function startOpenAIStandin({ host = "127.0.0.1", port = 0, tokenDelayMs = 15 } = {}) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://standin");
    if (req.method === "GET" && url.pathname === "/_standin/requests") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(requests));
      return;
    }
    if (req.method !== "POST" || url.pathname !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }));
      return;
    }
    let raw = "";
    for await (const chunk of req) raw += chunk;
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "invalid JSON body", type: "invalid_request_error" } }));
      return;
    }
    requests.push({ headers: req.headers, body });
    const model = body.model ?? "standin-1";
    const id = `chatcmpl-standin-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const text = replyFor(body.messages);
    const promptTokens = estimateTokens(JSON.stringify(body.messages ?? []));
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: estimateTokens(text),
      total_tokens: promptTokens + estimateTokens(text),
    };

    if (!body.stream) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          id,
          object: "chat.completion",
          created,
          model,
          choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
          usage,
        }),
      );
      return;
    }

    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    const send = (obj) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
    const chunk = (delta, finish_reason = null) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, finish_reason }],
    });
    send(chunk({ role: "assistant", content: "" }));
    for (const p of pieces(text)) {
      if (res.destroyed) return;
      send(chunk({ content: p }));
      if (tokenDelayMs > 0) await new Promise((r) => setTimeout(r, tokenDelayMs));
    }
    send(chunk({}, "stop"));
    if (body.stream_options?.include_usage) {
      send({ id, object: "chat.completion.chunk", created, model, choices: [], usage });
    }
    res.write("data: [DONE]\n\n");
    res.end();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolve({
        url: `http://${host}:${addr.port}`,
        requests,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
