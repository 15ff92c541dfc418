//! One stable sort for the whole worker. Pure.
//!
//! `slice::sort_by` is instantiated anew for every element type and
//! comparator, and each copy of the standard library's stable sort is
//! about 4.5 KB of wasm. Sorting positions (`usize`) through one
//! comparator object leaves a single copy; the caller's elements are then
//! moved into place. The lists sorted here are short (a page, a scrape),
//! so the extra pass costs nothing that shows.

use std::cmp::Ordering;

/// Sorts `v` by `cmp`, stably (equal elements keep their order).
pub fn sort_by<T>(v: &mut Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    sort_positions(&mut order, &|a, b| cmp(&v[a], &v[b]));
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

/// `sort_by` on a key.
pub fn sort_by_key<T, K: Ord>(v: &mut Vec<T>, key: impl Fn(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

#[inline(never)]
fn sort_positions(order: &mut [usize], cmp: &dyn Fn(usize, usize) -> Ordering) {
    order.sort_by(|a, b| cmp(*a, *b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably_like_the_standard_library() {
        let v: Vec<(u8, usize)> = [5u8, 1, 5, 3, 1, 9, 0, 5, 3]
            .iter()
            .copied()
            .zip(0..)
            .collect();
        let mut ours = v.clone();
        sort_by(&mut ours, |a, b| a.0.cmp(&b.0));
        let mut std = v.clone();
        std.sort_by_key(|a| a.0);
        assert_eq!(ours, std);
        let mut keyed = vec!["bb", "a", "ccc", "dd", "e"];
        sort_by_key(&mut keyed, |s| s.len());
        assert_eq!(keyed, vec!["a", "e", "bb", "dd", "ccc"]);
        let mut empty: Vec<u8> = vec![];
        sort_by(&mut empty, |a, b| a.cmp(b));
        assert!(empty.is_empty());
    }
}
