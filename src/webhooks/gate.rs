//! Whether an event is worth producing: the kinds some enabled endpoint
//! takes, as this isolate last read them.
//!
//! Producing an event costs a session object a seal, a row, a queue send,
//! and the consumer a wake-up and a D1 read, for every message. A
//! deployment with no endpoint (most of them) should pay none of that, and
//! one whose endpoints take only `session.*` events should not pay it per
//! message. So each isolate keeps the union of the enabled endpoints'
//! filters, read from the home shard at most every [`GATE_TTL_MS`] and
//! never on the path to an ack:
//!
//! - while that reading is fresh, an event no endpoint takes is not
//!   produced at all;
//! - while it is unknown or stale the event is produced (never lose one
//!   for want of a reading), and the sender reads the endpoints again
//!   before it sends: if none is enabled it drops the rows instead.
//!
//! So an endpoint gets every event of a kind it takes that happens from at
//! most [`GATE_TTL_MS`] after it was enabled (or its filter widened) on;
//! sooner in the isolate that served the admin call, which forgets its
//! reading. Events before that may or may not reach it, as they may not
//! reach an endpoint created a moment later. The sender drops produced
//! rows only when no endpoint is enabled at all, which the consumer would
//! do with them anyway.

use super::{Filter, Kind};

/// How long a reading of the enabled endpoints is trusted.
pub const GATE_TTL_MS: i64 = 10_000;

/// A set of event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Kinds(u8);

impl Kinds {
    pub const NONE: Kinds = Kinds(0);

    fn bit(kind: Kind) -> u8 {
        let i = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        1 << i
    }

    /// The kinds any of `filters` takes.
    pub fn taken_by<'a>(filters: impl IntoIterator<Item = &'a Filter>) -> Kinds {
        let mut bits = 0;
        for f in filters {
            for k in Kind::ALL {
                if f.takes(k) {
                    bits |= Kinds::bit(k);
                }
            }
        }
        Kinds(bits)
    }

    pub fn contains(self, kind: Kind) -> bool {
        self.0 & Kinds::bit(kind) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// What an isolate knows of the wanted kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Never read, or forgotten after an admin change.
    Unknown,
    /// Read from D1 at `at` (unix ms).
    Read { kinds: Kinds, at: i64 },
}

impl Gate {
    /// The kinds wanted, while the reading is fresh.
    pub fn fresh(self, now: i64) -> Option<Kinds> {
        match self {
            Gate::Read { kinds, at } if now >= at && now - at < GATE_TTL_MS => Some(kinds),
            _ => None,
        }
    }

    /// Whether to produce an event of `kind` now: unless a fresh reading
    /// says no endpoint takes it.
    pub fn admits(self, kind: Kind, now: i64) -> bool {
        self.fresh(now).is_none_or(|k| k.contains(kind))
    }
}

#[cfg(target_arch = "wasm32")]
pub use runtime::{admits, forget, wanted};

#[cfg(target_arch = "wasm32")]
mod runtime {
    use super::{Gate, Kinds};
    use crate::store::{self, now_ms};
    use crate::webhooks::{Filter, Kind};
    use std::cell::Cell;
    use worker::Env;

    thread_local! {
        static GATE: Cell<Gate> = const { Cell::new(Gate::Unknown) };
    }

    /// Whether to produce an event of `kind` now (synchronous: it runs in
    /// the block that stores the change).
    pub fn admits(kind: Kind) -> bool {
        GATE.with(|g| g.get().admits(kind, now_ms()))
    }

    /// The kinds wanted, read again if the reading is not fresh; None when
    /// D1 could not say (the caller then sends what it has).
    pub async fn wanted(env: &Env) -> Option<Kinds> {
        let now = now_ms();
        if let Some(k) = GATE.with(|g| g.get().fresh(now)) {
            return Some(k);
        }
        let home = store::home(env).ok()?;
        let stored = store::webhooks::enabled_filters(&home).await.ok()?;
        let filters: Vec<Filter> = stored.iter().map(|s| Filter::from_stored(s)).collect();
        let kinds = Kinds::taken_by(&filters);
        GATE.with(|g| g.set(Gate::Read { kinds, at: now }));
        Some(kinds)
    }

    /// After an endpoint was added, changed or removed: this isolate reads
    /// the endpoints again before it next decides.
    pub fn forget() {
        GATE.with(|g| g.set(Gate::Unknown));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_the_union_of_the_filters() {
        let only = Filter::Only(vec![Kind::SessionClosed, Kind::SessionWaiting]);
        let k = Kinds::taken_by([&only]);
        assert!(k.contains(Kind::SessionClosed) && k.contains(Kind::SessionWaiting));
        assert!(!k.contains(Kind::MessageCreated));
        let all = Kinds::taken_by([&only, &Filter::All]);
        assert!(Kind::ALL.iter().all(|x| all.contains(*x)));
        assert!(Kinds::taken_by(std::iter::empty::<&Filter>()).is_empty());
        // Every kind has a bit of its own.
        for (i, a) in Kind::ALL.iter().enumerate() {
            let one = Kinds::taken_by([&Filter::Only(vec![*a])]);
            for (j, b) in Kind::ALL.iter().enumerate() {
                assert_eq!(one.contains(*b), i == j, "{a:?} against {b:?}");
            }
        }
    }

    #[test]
    fn only_a_fresh_reading_holds_an_event_back() {
        let none = Gate::Read {
            kinds: Kinds::NONE,
            at: 1_000,
        };
        assert!(!none.admits(Kind::MessageCreated, 1_000));
        assert!(!none.admits(Kind::MessageCreated, 1_000 + GATE_TTL_MS - 1));
        // Stale, unknown, or read "in the future" (a clock step): produce.
        assert!(none.admits(Kind::MessageCreated, 1_000 + GATE_TTL_MS));
        assert!(none.admits(Kind::MessageCreated, 999));
        assert!(Gate::Unknown.admits(Kind::MessageCreated, 1_000));
        assert_eq!(Gate::Unknown.fresh(1_000), None);

        let closed_only = Gate::Read {
            kinds: Kinds::taken_by([&Filter::Only(vec![Kind::SessionClosed])]),
            at: 1_000,
        };
        assert!(closed_only.admits(Kind::SessionClosed, 2_000));
        assert!(!closed_only.admits(Kind::MessageCreated, 2_000));
    }
}
