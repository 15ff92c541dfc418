//! Rate limiting. Pure: time is passed in.

/// What a per-user socket budget is for. Each scope has its own bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `send`.
    Messages,
    /// Every other mutating frame: `edit`, `delete`, `react`, `read`.
    Actions,
}

impl Scope {
    /// The budget a frame draws from, if it writes anything. Typing has
    /// its own throttle; stop and ping store nothing.
    pub fn of_frame(frame: &crate::protocol::ClientFrame) -> Option<Scope> {
        use crate::protocol::ClientFrame as F;
        match frame {
            // A regeneration costs a turn, as a message does.
            F::Send { .. } | F::Regenerate => Some(Scope::Messages),
            F::Edit { .. }
            | F::Rate { .. }
            | F::Delete { .. }
            | F::React { .. }
            | F::Vote { .. }
            | F::Read { .. }
            | F::Escalate
            | F::Claim
            | F::Takeover
            | F::Transfer { .. }
            | F::Resolve
            | F::Release
            | F::SetProfile { .. }
            | F::Approve { .. }
            | F::Reject { .. } => Some(Scope::Actions),
            F::Typing | F::Stop | F::Ping => None,
        }
    }

    /// The label in storage, metrics (`scope="…"`) and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Messages => "messages",
            Scope::Actions => "actions",
        }
    }
}

/// A token bucket: `capacity` tokens, refilled continuously at
/// `per_minute` tokens a minute. Each message takes one.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    capacity: f64,
    per_ms: f64,
    tokens: f64,
    last_ms: i64,
}

impl TokenBucket {
    /// A full bucket at time `now_ms`.
    pub fn new(capacity: u32, per_minute: u32, now_ms: i64) -> Self {
        TokenBucket {
            capacity: capacity as f64,
            per_ms: per_minute as f64 / 60_000.0,
            tokens: capacity as f64,
            last_ms: now_ms,
        }
    }

    /// A bucket as it was saved: `tokens` left at `last_ms`. The rate and
    /// capacity come from today's configuration.
    pub fn restore(capacity: u32, per_minute: u32, tokens: f64, last_ms: i64) -> Self {
        TokenBucket {
            capacity: capacity as f64,
            per_ms: per_minute as f64 / 60_000.0,
            tokens: tokens.clamp(0.0, capacity as f64),
            last_ms,
        }
    }

    /// What to save: tokens left and when they were counted.
    pub fn state(&self) -> (f64, i64) {
        (self.tokens, self.last_ms)
    }

    /// Takes a token, or says how long until one is available.
    pub fn take(&mut self, now_ms: i64) -> Result<(), u64> {
        let elapsed = (now_ms - self.last_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * self.per_ms).min(self.capacity);
        self.last_ms = now_ms.max(self.last_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if self.per_ms <= 0.0 {
            Err(u64::MAX)
        } else {
            Err(((1.0 - self.tokens) / self.per_ms).ceil() as u64)
        }
    }
}

/// The UTC day of a unix-milliseconds time, as `YYYY-MM-DD`: the key of
/// the daily budgets.
pub fn utc_day(ms: i64) -> String {
    let (year, month, day) = civil(ms.div_euclid(86_400_000));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Year, month and day of a count of days since 1970-01-01: the
/// civil-from-days algorithm of Howard Hinnant's `chrono`-compatible date
/// library, so the worker links no date crate. (`utc_day` here, and the
/// webhooks' RFC 3339 timestamps.)
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_draw_on_messages_other_writes_on_actions_and_the_rest_on_nothing() {
        let l = crate::protocol::Limits {
            max_message_chars: 100,
        };
        let scope = |f: &str| Scope::of_frame(&crate::protocol::decode(f, l).unwrap());
        assert_eq!(
            scope(r#"{"type":"send","client_id":"c","text":"x"}"#),
            Some(Scope::Messages)
        );
        for f in [
            r#"{"type":"edit","seq":1,"text":"x"}"#,
            r#"{"type":"delete","seq":1}"#,
            r#"{"type":"react","seq":1,"emoji":"x","action":"add"}"#,
            r#"{"type":"read","seq":1}"#,
            r#"{"type":"claim"}"#,
            r#"{"type":"transfer","to":"u"}"#,
        ] {
            assert_eq!(scope(f), Some(Scope::Actions), "{f}");
        }
        for f in [
            r#"{"type":"typing"}"#,
            r#"{"type":"stop"}"#,
            r#"{"type":"ping"}"#,
        ] {
            assert_eq!(scope(f), None, "{f}");
        }
    }

    #[test]
    fn utc_days() {
        for (ms, day) in [
            (0, "1970-01-01"),
            (86_399_999, "1970-01-01"),
            (86_400_000, "1970-01-02"),
            (-1, "1969-12-31"),
            (951_782_400_000, "2000-02-29"),
            (1_709_164_800_000, "2024-02-29"),
            (1_709_251_199_999, "2024-02-29"),
            (1_709_251_200_000, "2024-03-01"),
            (1_798_761_599_999, "2026-12-31"),
            (4_102_444_800_000, "2100-01-01"),
        ] {
            assert_eq!(utc_day(ms), day, "{ms}");
        }
    }

    #[test]
    fn bursts_then_refills() {
        let mut b = TokenBucket::new(3, 60, 0);
        assert!(b.take(0).is_ok() && b.take(0).is_ok() && b.take(0).is_ok());
        assert_eq!(b.take(0), Err(1000), "one a second at 60/min");
        assert_eq!(b.take(400), Err(600));
        assert!(b.take(1000).is_ok());
        assert!(b.take(1000).is_err());
        // Refill never exceeds capacity.
        assert!(
            b.take(1_000_000).is_ok() && b.take(1_000_000).is_ok() && b.take(1_000_000).is_ok()
        );
        assert!(b.take(1_000_000).is_err());
    }

    #[test]
    fn a_restored_bucket_continues_where_it_stopped() {
        let mut b = TokenBucket::new(2, 60, 0);
        assert!(b.take(0).is_ok() && b.take(0).is_ok());
        let (tokens, last) = b.state();
        let mut again = TokenBucket::restore(2, 60, tokens, last);
        assert_eq!(again.take(0), Err(1000), "no fresh burst after a restore");
        assert!(again.take(1000).is_ok());
        // A saved value above today's capacity is clamped.
        assert_eq!(TokenBucket::restore(1, 60, 50.0, 0).state().0, 1.0);
    }

    #[test]
    fn a_clock_going_backwards_does_not_mint_tokens() {
        let mut b = TokenBucket::new(1, 60, 10_000);
        assert!(b.take(10_000).is_ok());
        assert!(b.take(5_000).is_err());
    }
}
