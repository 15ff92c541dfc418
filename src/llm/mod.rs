//! LLM providers: request building, stream decoding, error mapping, retry
//! timing, prompt budgeting, prices, assistant profiles (`profile`),
//! function calls (`tools`) and the policy of a turn (`driver`). Everything
//! here is pure and natively tested; the session object supplies the I/O.
//!
//! Supported wire formats: OpenAI-compatible Chat Completions (OpenAI, vLLM,
//! Ollama, llama.cpp server, …), Anthropic Messages, Google Gemini
//! `streamGenerateContent` with `alt=sse`, and Workers AI's streaming `run`.

pub mod budget;
pub mod config;
pub mod driver;
pub mod price;
pub mod profile;
pub mod providers;
pub mod sse;
pub mod tools;

use serde::{Deserialize, Serialize};

/// The assistant profile of the configuration-only setup (`ASSISTANT_*`,
/// `LLM_*`), under which usage is kept.
pub const DEFAULT_PROFILE: &str = "default";

/// Which wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Openai,
    Anthropic,
    Gemini,
    WorkersAi,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Openai, Kind::Anthropic, Kind::Gemini, Kind::WorkersAi];

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "openai" => Kind::Openai,
            "anthropic" => Kind::Anthropic,
            "gemini" => Kind::Gemini,
            "workers_ai" => Kind::WorkersAi,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Openai => "openai",
            Kind::Anthropic => "anthropic",
            Kind::Gemini => "gemini",
            Kind::WorkersAi => "workers_ai",
        }
    }
}

/// A speaker in the prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    #[default]
    User,
    Assistant,
    /// What a function call came to (`Turn::result`).
    Tool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Turn {
    pub role: Role,
    pub text: String,
    /// Images a user's message carries, for vision models (`LLM_VISION`).
    pub images: Vec<Image>,
    /// The function calls an assistant turn asked for.
    pub calls: Vec<tools::ToolCall>,
    /// A `Role::Tool` turn's answer to one call.
    pub result: Option<tools::ToolResult>,
}

/// An image as vision models take it inline: its type and its bytes in
/// standard base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub media_type: &'static str,
    pub base64: String,
}

/// Most images one prompt carries (the newest question's first), and the
/// largest one sent: vendors refuse bigger ones (Anthropic: 5 MB).
pub const MAX_PROMPT_IMAGES: usize = 4;
pub const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;

/// What a turn sends: the system prompt, the history that fits, and the
/// functions the model may call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub turns: Vec<Turn>,
    pub tools: Vec<tools::ToolSpec>,
    /// The model must answer in words: the functions are still declared
    /// (vendors want them declared while the history has calls), but it
    /// may call none (a tool loop's last round).
    pub no_calls: bool,
}

/// One decoded piece of a provider's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    Text(String),
    /// Token counts as the provider reports them; any may come alone.
    /// `input` counts every prompt token, `cached` those of them read from
    /// the provider's prompt cache.
    Usage {
        input: Option<u64>,
        cached: Option<u64>,
        output: Option<u64>,
    },
    /// A piece of a function call the model asks for (`tools.rs` puts
    /// the pieces together). `index` tells a turn's parallel calls apart
    /// where the vendor streams them in pieces; None is a whole call of
    /// its own (Gemini). `arguments` is a fragment of the call's JSON.
    ToolCall {
        index: Option<u64>,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    /// Why generation ended, in the provider's own words (`stop`, `length`,
    /// `end_turn`, `STOP`, …).
    Finish(String),
    /// The provider reported an error inside the stream.
    Error {
        kind: String,
    },
    /// The provider's explicit end-of-stream marker.
    Done,
}

/// The stream could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);
