// What `make dev` gives the assistant: the local stand-in, unless .dev.vars
// names providers or holds a provider key, in which case those are used.

const KEYS = [
  ["OPENAI_API_KEY", "openai"],
  ["ANTHROPIC_API_KEY", "anthropic"],
  ["GEMINI_API_KEY", "gemini"],
];

/** The assistant variables for development, given the .dev.vars entries. */
export function devAssistantVars(dotVars) {
  if (dotVars.LLM_PROVIDERS) return {};
  const chain = KEYS.filter(([key]) => dotVars[key]).map(([, name]) => name);
  if (chain.length) return { LLM_PROVIDERS: chain.join(",") };
  return { LLM_PROVIDERS: "openai", OPENAI_BASE_URL: "{llm_url}/v1", OPENAI_MODEL: "standin-1" };
}
