// A stand-in for the Workers AI binding (`env.AI`), installed by the harness
// as a wrapped binding. It keeps the binding's contract: `run(model, inputs)`
// resolves to a ReadableStream of SSE (`data: {"response": ...}` … `[DONE]`)
// when `inputs.stream` is true, and rejects on failure, as the real binding
// does. The bytes come from the stand-in LLM server, so tests script faults
// and read the inputs the worker sent the same way as for other vendors.
//
// What this does not cover: the real binding's own transport, model
// catalogue, account limits and error texts. Those need a Cloudflare account.
export const AI_BINDING_SCRIPT = `
// Named Ai: the worker crate checks a binding's constructor name, and the
// real binding's is Ai.
class Ai {
  constructor(env) {
    this.env = env;
  }
  async run(model, inputs) {
      const env = this.env;
      const res = await fetch(env.LLM_URL + "/_standin/workers-ai/" + encodeURIComponent(model), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(inputs),
      });
      if (!res.ok) {
        const err = new Error("AiError: stand-in status " + res.status);
        err.status = res.status;
        throw err;
      }
      if (inputs && inputs.stream) return res.body;
      let text = "";
      for (const line of (await res.text()).split("\\n")) {
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        text += JSON.parse(line.slice(6)).response ?? "";
      }
      return { response: text };
  }
}
export default function (env) {
  return new Ai(env);
}
`;
