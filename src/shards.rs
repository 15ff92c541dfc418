//! D1 shards: which D1 database holds a session's replicated record.
//!
//! `D1_SHARDS` lists D1 binding names, comma-separated (default `DB`). The
//! first is the *home* shard: sessions created before sharding live there.
//! A new session's shard is picked from the list at creation, by its id, and
//! stored in the session object's log, which is what every later write goes
//! by. So a session never moves: adding a binding to the list only spreads
//! new sessions over more databases, and no existing row is touched.
//! Removing a binding that still holds sessions would hide them from
//! listings; the deploy runbook says to keep every shard listed.
//!
//! Reads that span sessions (listings, metrics, rotation) ask every shard in
//! parallel and merge here: each shard answers its own first `limit` rows of
//! the same keyset order, so the first `limit` of the merge are exactly the
//! first `limit` of the union.
//!
//! Pure: tested natively.

use std::cmp::Ordering;

/// A D1 binding name (`[A-Za-z_][A-Za-z0-9_]*`, as wrangler allows).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Shard(String);

impl Shard {
    pub fn parse(name: &str) -> Result<Shard, String> {
        let mut chars = name.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && name.len() <= 64;
        if ok {
            Ok(Shard(name.to_string()))
        } else {
            Err(format!("`{name}` is not a binding name"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The configured shards, home first; never empty, no repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shards(Vec<Shard>);

impl Shards {
    /// Parses `D1_SHARDS` (None or empty: just `DB`).
    pub fn parse(list: Option<&str>) -> Result<Shards, String> {
        let list = list.map(str::trim).filter(|l| !l.is_empty());
        let Some(list) = list else {
            return Ok(Shards(vec![Shard(crate::bindings::HOME_D1.into())]));
        };
        let mut out: Vec<Shard> = Vec::new();
        for name in list.split(',').map(str::trim) {
            let shard = Shard::parse(name)?;
            if out.contains(&shard) {
                return Err(format!("`{name}` is listed twice"));
            }
            out.push(shard);
        }
        Ok(Shards(out))
    }

    /// Where sessions from before sharding live (and any session whose
    /// object does not know its shard yet is looked for first).
    pub fn home(&self) -> &Shard {
        &self.0[0]
    }

    pub fn all(&self) -> &[Shard] {
        &self.0
    }

    /// The shard a new session goes to. Session ids are random hex, so
    /// their first 8 digits spread sessions evenly; any other id is hashed.
    pub fn pick(&self, session_id: &str) -> &Shard {
        let n = self.0.len() as u64;
        let h = session_id
            .get(..8)
            .and_then(|p| u64::from_str_radix(p, 16).ok())
            .unwrap_or_else(|| fnv1a(session_id.as_bytes()));
        &self.0[(h % n) as usize]
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Merges pages that are each already in `order` into the first `limit`
/// rows of their union, in that order.
pub fn merge<T>(pages: Vec<Vec<T>>, limit: usize, order: impl Fn(&T, &T) -> Ordering) -> Vec<T> {
    let mut all: Vec<T> = pages.into_iter().flatten().collect();
    // A stable sort of already-sorted runs is a merge in practice.
    crate::sort::sort_by(&mut all, &order);
    all.truncate(limit);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_list_home_first() {
        let s = Shards::parse(Some(" DB , DB_SHARD_1,DB_SHARD_2 ")).unwrap();
        let names: Vec<_> = s.all().iter().map(Shard::as_str).collect();
        assert_eq!(names, ["DB", "DB_SHARD_1", "DB_SHARD_2"]);
        assert_eq!(s.home().as_str(), "DB");
        assert_eq!(Shards::parse(None).unwrap().all().len(), 1);
        assert_eq!(Shards::parse(Some("  ")).unwrap().home().as_str(), "DB");
    }

    #[test]
    fn refuses_bad_names_and_repeats() {
        for bad in ["DB,,X", "1DB", "DB-2", "DB,DB", "D B"] {
            assert!(Shards::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn picks_every_shard_and_always_the_same_one() {
        let s = Shards::parse(Some("A,B,C")).unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..300u32 {
            let id = format!("{:08x}{:024x}", i.wrapping_mul(2_654_435_761), i);
            let first = s.pick(&id).clone();
            assert_eq!(s.pick(&id), &first);
            seen.insert(first);
        }
        assert_eq!(seen.len(), 3);
        // Not hex: hashed, still in range and stable.
        assert_eq!(s.pick("adm00001"), s.pick("adm00001"));
    }

    #[test]
    fn adding_a_shard_keeps_the_home_first() {
        let before = Shards::parse(Some("DB")).unwrap();
        let after = Shards::parse(Some("DB,DB_SHARD_1")).unwrap();
        assert_eq!(before.home(), after.home());
    }

    #[test]
    fn merged_pages_are_the_first_rows_of_the_union() {
        // Three shards' pages of (updated_at desc, id desc), limit 4 each.
        let order = |a: &(i64, &str), b: &(i64, &str)| b.cmp(a);
        let pages = vec![
            vec![(9, "a"), (5, "c"), (2, "z"), (1, "b")],
            vec![(9, "b"), (4, "x"), (4, "a"), (0, "q")],
            vec![(7, "m"), (5, "d")],
        ];
        let mut union: Vec<_> = pages.iter().flatten().cloned().collect();
        union.sort_by(order);
        let merged = merge(pages, 4, order);
        assert_eq!(merged, union[..4].to_vec());
        assert_eq!(merged, vec![(9, "b"), (9, "a"), (7, "m"), (5, "d")]);
    }
}
