//! Open-loop arrivals: event `i` is due at `start + i / rate`, whatever happened to the
//! earlier ones. Each event runs in its own task and is handed its scheduled instant, so
//! latency is measured from when the request *should* have started (no coordinated
//! omission: if the generator or the server falls behind, the waiting counts).

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

/// Runs `count` events at `rate` per second, calling `event(i, scheduled)` for each in a
/// new task; waits for all of them (each bounded by the caller) and returns when done.
/// The returned duration is how far the dispatcher itself lagged behind schedule at worst.
pub async fn run<F, Fut>(rate: f64, count: u64, event: F) -> Duration
where
    F: Fn(u64, Instant) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = JoinSet::new();
    let mut worst_lag = Duration::ZERO;
    for i in 0..count {
        let due = start + Duration::from_secs_f64(i as f64 / rate.max(1e-9));
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due).await;
        } else {
            worst_lag = worst_lag.max(now - due);
        }
        tasks.spawn(event(i, due));
        // Reap finished tasks as we go so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    worst_lag
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn schedules_at_rate() {
        let n = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let n2 = n.clone();
        run(200.0, 50, move |_, _| {
            let n = n2.clone();
            async move {
                n.fetch_add(1, Ordering::Relaxed);
            }
        })
        .await;
        assert_eq!(n.load(Ordering::Relaxed), 50);
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(240), "{took:?}");
    }
}
