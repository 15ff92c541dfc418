//! Money: the price table (`LLM_PRICES`) and what a reply cost. Pure.
//!
//! Amounts are whole nano-dollars (`Usd`), so sums are exact and the same
//! in every store; JSON shows them as decimal US dollars. Vendors price per
//! million tokens, and a price with up to six decimals (0.075 $/M) costs a
//! whole number of nano-dollars per thousand tokens, so nothing is lost
//! before a reply's cost is rounded once.

use super::Kind;
use serde::{Deserialize, Serialize};

/// An amount of US dollars, in nano-dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Usd(pub u64);

impl Usd {
    pub const NANOS_PER_DOLLAR: u64 = 1_000_000_000;

    pub fn nanos(self) -> u64 {
        self.0
    }

    pub fn dollars(self) -> f64 {
        self.0 as f64 / Self::NANOS_PER_DOLLAR as f64
    }

    /// From a configured amount of dollars (finite, not negative).
    pub fn from_dollars(d: f64) -> Option<Usd> {
        (d.is_finite() && (0.0..1e9).contains(&d)).then(|| Usd((d * 1e9).round() as u64))
    }
}

impl Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.dollars())
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        let v = f64::deserialize(d)?;
        Usd::from_dollars(v).ok_or_else(|| serde::de::Error::custom("not an amount of dollars"))
    }
}

/// One model's prices, in micro-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    /// Input tokens the provider read from its prompt cache.
    pub cached_input: u64,
}

/// What a reply used, as the provider reported it. `input` counts every
/// prompt token, `cached` the part of them read from the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub cached: u64,
    pub output: u64,
}

impl Price {
    /// The cost of `t`, rounded to the nearest nano-dollar.
    pub fn cost(&self, t: Tokens) -> Usd {
        let cached = t.cached.min(t.input);
        let micro_per_m = (t.input - cached) as u128 * self.input as u128
            + cached as u128 * self.cached_input as u128
            + t.output as u128 * self.output as u128;
        // µ$ per million tokens × tokens / 10⁶ = µ$; × 10³ = n$.
        Usd(((micro_per_m + 500) / 1_000).min(u64::MAX as u128) as u64)
    }
}

/// The configured prices, by provider and model. A model the table does
/// not name has no price: its replies record no cost (not a cost of 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceTable(Vec<(Kind, String, Price)>);

impl PriceTable {
    /// Parses `LLM_PRICES`: a JSON array of
    /// `{"provider","model","input","output","cached_input"?}`, prices in
    /// US dollars per million tokens. The error says what is wrong. (Read
    /// through `serde_json::Value`, not a derived struct: the derive cost
    /// 3 KiB of bundle for one configuration variable.)
    pub fn parse(json: &str) -> Result<PriceTable, String> {
        const SHAPE: &str = "a JSON array of {provider, model, input, output, cached_input?}";
        let Ok(serde_json::Value::Array(entries)) = serde_json::from_str(json) else {
            return Err(SHAPE.into());
        };
        let mut out: Vec<(Kind, String, Price)> = Vec::new();
        for e in &entries {
            let known = ["provider", "model", "input", "output", "cached_input"];
            let Some(fields) = e
                .as_object()
                .filter(|o| o.keys().all(|k| known.contains(&k.as_str())))
            else {
                return Err(SHAPE.into());
            };
            let micro = |name: &str| -> Result<Option<u64>, String> {
                let Some(v) = fields.get(name) else {
                    return Ok(None);
                };
                v.as_f64()
                    .filter(|d| (0.0..1e6).contains(d))
                    .map(|d| Some((d * 1e6).round() as u64))
                    .ok_or_else(|| {
                        format!("prices between 0 and 1000000 dollars per million tokens, not {v}")
                    })
            };
            let text = |name: &str| fields.get(name).and_then(|v| v.as_str()).unwrap_or("");
            let (provider, model) = (text("provider"), text("model"));
            let kind = Kind::parse(provider)
                .ok_or_else(|| format!("a known provider, not {provider:?}"))?;
            if model.is_empty() {
                return Err("a model id or * for each entry".into());
            }
            if out.iter().any(|(k, m, _)| *k == kind && m == model) {
                return Err(format!("one entry per model ({provider} {model} twice)"));
            }
            let (Some(input), Some(output)) = (micro("input")?, micro("output")?) else {
                return Err(SHAPE.into());
            };
            let cached_input = micro("cached_input")?.unwrap_or(input);
            out.push((
                kind,
                model.to_string(),
                Price {
                    input,
                    output,
                    cached_input,
                },
            ));
        }
        Ok(PriceTable(out))
    }

    /// The price of `model` at `kind`: its own entry, else the provider's `*`.
    pub fn get(&self, kind: Kind, model: &str) -> Option<Price> {
        let find = |m: &str| {
            self.0
                .iter()
                .find(|(k, name, _)| *k == kind && name == m)
                .map(|e| e.2)
        };
        find(model).or_else(|| find("*"))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"[
        {"provider":"openai","model":"gpt-4o-mini","input":0.15,"output":0.6,"cached_input":0.075},
        {"provider":"anthropic","model":"*","input":3,"output":15},
        {"provider":"workers_ai","model":"@cf/meta/llama-3.1-8b-instruct","input":0.282,"output":0.827}
    ]"#;

    #[test]
    fn a_reply_costs_its_tokens_at_the_models_prices() {
        let t = PriceTable::parse(TABLE).unwrap();
        let p = t.get(Kind::Openai, "gpt-4o-mini").unwrap();
        // 1000 in (400 of them cached), 200 out:
        // 600 × 0.15 + 400 × 0.075 + 200 × 0.6 = 240 $/M·token → 240 µ$.
        let cost = p.cost(Tokens {
            input: 1_000,
            cached: 400,
            output: 200,
        });
        assert_eq!(cost, Usd(240_000));
        assert!((cost.dollars() - 0.000_24).abs() < 1e-12);
        // One token at 0.15 $/M is 150 n$, exactly.
        let one = p.cost(Tokens {
            input: 1,
            cached: 0,
            output: 0,
        });
        assert_eq!(one, Usd(150));
    }

    #[test]
    fn a_provider_wide_entry_prices_models_not_named_and_the_rest_have_none() {
        let t = PriceTable::parse(TABLE).unwrap();
        let p = t.get(Kind::Anthropic, "claude-3-5-haiku-latest").unwrap();
        // No cached price given: cached input costs as much as input.
        assert_eq!(p.cached_input, p.input);
        assert_eq!(p.input, 3_000_000);
        assert_eq!(t.get(Kind::Gemini, "gemini-2.0-flash"), None);
        assert_eq!(t.get(Kind::Openai, "gpt-4o"), None);
    }

    #[test]
    fn bad_tables_say_what_is_wrong() {
        for (bad, says) in [
            ("{}", "JSON array"),
            (
                r#"[{"provider":"acme","model":"m","input":1,"output":1}]"#,
                "known provider",
            ),
            (
                r#"[{"provider":"openai","model":"m","input":-1,"output":1}]"#,
                "between 0",
            ),
            (
                r#"[{"provider":"openai","model":"m","input":1}]"#,
                "JSON array",
            ),
            (
                r#"[{"provider":"openai","model":"","input":1,"output":1}]"#,
                "model id",
            ),
            (
                r#"[{"provider":"openai","model":"m","input":1,"output":1},{"provider":"openai","model":"m","input":2,"output":2}]"#,
                "twice",
            ),
        ] {
            let e = PriceTable::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn dollars_cross_json_as_numbers() {
        assert_eq!(serde_json::to_string(&Usd(1_500_000)).unwrap(), "0.0015");
        let back: Usd = serde_json::from_str("0.0015").unwrap();
        assert_eq!(back, Usd(1_500_000));
        assert!(serde_json::from_str::<Usd>("-1").is_err());
    }
}
