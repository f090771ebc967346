//! Futures running side by side inside one task, finished in any order.
//!
//! `check --workers N` keeps up to N cases in flight while it judges answers strictly in case
//! order. The cases borrow the plan and the target, so they cannot be spawned (`'static`); they
//! are polled here instead, from the runner's own task. N is small (tens), so polling each on every
//! wake costs nothing next to an invocation.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

type Running<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(super) struct InFlight<'a, T> {
    running: Vec<Running<'a, T>>,
}

impl<'a, T> InFlight<'a, T> {
    pub fn new() -> Self {
        InFlight {
            running: Vec::new(),
        }
    }

    pub fn push(&mut self, future: impl Future<Output = T> + Send + 'a) {
        self.running.push(Box::pin(future));
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// The output of whichever finishes next. Never resolves while empty, so it can sit in a
    /// `select!` beside other work.
    pub async fn next(&mut self) -> T {
        std::future::poll_fn(|cx| {
            for i in 0..self.running.len() {
                if let Poll::Ready(out) = self.running[i].as_mut().poll(cx) {
                    drop(self.running.swap_remove(i));
                    return Poll::Ready(out);
                }
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn outputs_come_in_the_order_the_futures_finish() {
        let mut set = InFlight::new();
        for (i, ms) in [(0, 30u64), (1, 10), (2, 20)] {
            set.push(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                i
            });
        }
        let mut order = Vec::new();
        while !set.is_empty() {
            order.push(set.next().await);
        }
        assert_eq!(order, vec![1, 2, 0]);
    }
}
