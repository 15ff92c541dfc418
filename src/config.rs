//! Configuration, read once per isolate from vars and secrets.
//!
//! Pure: the runtime hands in a lookup function, so validation is tested
//! natively. Every tunable has its default here and nowhere else; a bad value
//! names the variable and what was expected.

use std::fmt;

/// Which set of behaviours is switched on. Development unlocks conveniences
/// that must never exist in production (for example minting tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Log verbosity, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub environment: Environment,
    pub log_level: LogLevel,
    /// Largest WebSocket frame accepted, in bytes; larger closes with 1009.
    pub max_frame_bytes: usize,
    /// Live sockets one session accepts before refusing new ones.
    pub max_sockets_per_session: usize,
}

/// One invalid variable: its name and what was expected of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: expected {}", self.variable, self.expected)
    }
}

impl std::error::Error for ConfigError {}

/// Defaults, in one place. Documented in the README's configuration table.
pub mod defaults {
    pub const ENVIRONMENT: &str = "production";
    pub const LOG_LEVEL: &str = "info";
    pub const MAX_FRAME_BYTES: usize = 64 * 1024;
    pub const MAX_SOCKETS_PER_SESSION: usize = 256;
}

impl Config {
    /// Builds the configuration from a lookup of variable names to values
    /// (`None` when unset). Empty strings count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());

        let environment = match get("ENVIRONMENT")
            .as_deref()
            .unwrap_or(defaults::ENVIRONMENT)
        {
            "development" => Environment::Development,
            "production" => Environment::Production,
            _ => return Err(invalid("ENVIRONMENT", "one of: development, production")),
        };
        let log_level = match get("LOG_LEVEL").as_deref().unwrap_or(defaults::LOG_LEVEL) {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => return Err(invalid("LOG_LEVEL", "one of: debug, info, warn, error")),
        };
        let max_frame_bytes = bounded(
            get("MAX_FRAME_BYTES"),
            "MAX_FRAME_BYTES",
            defaults::MAX_FRAME_BYTES,
            256,
            1024 * 1024,
        )?;
        let max_sockets_per_session = bounded(
            get("MAX_SOCKETS_PER_SESSION"),
            "MAX_SOCKETS_PER_SESSION",
            defaults::MAX_SOCKETS_PER_SESSION,
            1,
            32_768,
        )?;

        Ok(Config {
            environment,
            log_level,
            max_frame_bytes,
            max_sockets_per_session,
        })
    }

    pub fn is_development(&self) -> bool {
        self.environment == Environment::Development
    }
}

// Hand-written so that secrets added later can never leak through `{:?}`:
// each field is listed deliberately.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("environment", &self.environment)
            .field("log_level", &self.log_level)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("max_sockets_per_session", &self.max_sockets_per_session)
            .finish()
    }
}

fn invalid(variable: &'static str, expected: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        expected: expected.into(),
    }
}

fn bounded(
    raw: Option<String>,
    variable: &'static str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.trim().parse::<usize>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(invalid(variable, format!("an integer from {min} to {max}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_unset() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.environment, Environment::Production);
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.max_frame_bytes, defaults::MAX_FRAME_BYTES);
        assert_eq!(c.max_sockets_per_session, defaults::MAX_SOCKETS_PER_SESSION);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = cfg(&[("MAX_FRAME_BYTES", "  "), ("ENVIRONMENT", "")]).unwrap();
        assert_eq!(c.max_frame_bytes, defaults::MAX_FRAME_BYTES);
        assert!(!c.is_development());
    }

    #[test]
    fn values_are_read() {
        let c = cfg(&[
            ("ENVIRONMENT", "development"),
            ("LOG_LEVEL", "debug"),
            ("MAX_FRAME_BYTES", "2048"),
            ("MAX_SOCKETS_PER_SESSION", "3"),
        ])
        .unwrap();
        assert!(c.is_development());
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(c.max_frame_bytes, 2048);
        assert_eq!(c.max_sockets_per_session, 3);
    }

    #[test]
    fn each_invalid_variable_is_named() {
        for (var, bad) in [
            ("ENVIRONMENT", "staging"),
            ("LOG_LEVEL", "loud"),
            ("MAX_FRAME_BYTES", "12"),
            ("MAX_FRAME_BYTES", "lots"),
            ("MAX_SOCKETS_PER_SESSION", "0"),
        ] {
            let err = cfg(&[(var, bad)]).unwrap_err();
            assert_eq!(err.variable, var, "value {bad:?}");
            assert!(err.to_string().starts_with(var));
        }
    }
}
