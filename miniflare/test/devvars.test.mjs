import { test } from "node:test";
import assert from "node:assert/strict";
import { devAssistantVars } from "../devvars.mjs";

test("the stand-in by default", () => {
  assert.deepEqual(devAssistantVars({}), {
    LLM_PROVIDERS: "openai",
    OPENAI_BASE_URL: "{llm_url}/v1",
    OPENAI_MODEL: "standin-1",
  });
});

test("a provider key switches to the real provider", () => {
  assert.deepEqual(devAssistantVars({ ANTHROPIC_API_KEY: "sk-ant" }), { LLM_PROVIDERS: "anthropic" });
  assert.deepEqual(devAssistantVars({ OPENAI_API_KEY: "a", GEMINI_API_KEY: "b" }), { LLM_PROVIDERS: "openai,gemini" });
});

test("an explicit chain wins", () => {
  assert.deepEqual(devAssistantVars({ LLM_PROVIDERS: "gemini", OPENAI_API_KEY: "a" }), {});
});
