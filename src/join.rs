//! Running a few futures at once. Pure.
//!
//! `futures::future::try_join_all` carries two implementations (a small
//! one and, past 30 futures, one on `FuturesOrdered`), and the worker pays
//! for both once per future type: about 15 KB of wasm for the handful of
//! places that ask every D1 shard at once. The lists here are short (one
//! future per shard), so polling each pending future in turn is enough.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Runs every future at once; their outputs in the given order, or the
/// first error (the others are then dropped, which cancels them).
pub async fn try_join_all<T, E, F>(futures: impl IntoIterator<Item = F>) -> Result<Vec<T>, E>
where
    F: Future<Output = Result<T, E>>,
{
    let mut pending: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut done: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (slot, out) in pending.iter_mut().zip(done.iter_mut()) {
            let Some(f) = slot else { continue };
            match f.as_mut().poll(cx) {
                Poll::Ready(Ok(v)) => {
                    *out = Some(v);
                    *slot = None;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if pending.iter().all(Option::is_none) {
            Poll::Ready(Ok(done.iter_mut().filter_map(Option::take).collect()))
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::oneshot;
    use futures::executor::block_on;

    #[test]
    fn outputs_keep_their_order_whatever_finishes_first() {
        let (tx1, rx1) = oneshot::channel::<u32>();
        let (tx2, rx2) = oneshot::channel::<u32>();
        let joined = try_join_all([rx1, rx2]);
        // The second finishes first.
        tx2.send(2).unwrap();
        tx1.send(1).unwrap();
        assert_eq!(block_on(joined), Ok(vec![1, 2]));
        let none: Vec<std::future::Ready<Result<u8, ()>>> = vec![];
        assert_eq!(block_on(try_join_all(none)), Ok(vec![]));
    }

    #[test]
    fn the_first_error_ends_it_and_cancels_the_rest() {
        let (tx, rx) = oneshot::channel::<u32>();
        let failing = async { Err::<u32, &str>("down") };
        let waiting = async move { rx.await.map_err(|_| "cancelled") };
        let joined = try_join_all([
            Box::pin(waiting) as Pin<Box<dyn Future<Output = _>>>,
            Box::pin(failing),
        ]);
        assert_eq!(block_on(joined), Err("down"));
        // The waiting future was dropped: its sender sees the receiver gone.
        assert!(tx.send(1).is_err());
    }
}
