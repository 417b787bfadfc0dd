//! `GET /{org}/{app}/stats` (ferrim extension, for the console's live view): online users
//! and connections now, logins and messages per minute.
//!
//! Counts are those of this server process (all apps it hosts): the session registry's
//! gauges and the Prometheus counters `ferrim_logins_total{result="ok"}` and
//! `ferrim_messages_total` minus its `result="duplicate"` series. Per-minute rates come from
//! a short history of samples taken when this endpoint is called.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use super::envelope::Envelope;
use super::extract::AdminCtx;
use super::ApiError;

/// A rate is measured over (at least) this span, once that much history exists.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Samples older than this are dropped.
const KEEP: Duration = Duration::from_secs(600);

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    logins: f64,
    messages: f64,
}

static HISTORY: Mutex<VecDeque<Sample>> = Mutex::new(VecDeque::new());

/// Live figures of this server (app token required).
pub(crate) async fn stats(AdminCtx(ctx): AdminCtx) -> Result<Envelope, ApiError> {
    let sessions = ctx.state.core.accounts.sessions();
    let text = crate::metrics::handle().render();
    let logins_total = counter(&text, "ferrim_logins_total", Some("result=\"ok\""));
    // Stored messages; a client's resend of the same message is counted as duplicate.
    let messages_total = counter(&text, "ferrim_messages_total", None)
        - counter(&text, "ferrim_messages_total", Some("result=\"duplicate\""));
    let now = Sample {
        at: Instant::now(),
        logins: logins_total,
        messages: messages_total,
    };
    let (logins_per_min, messages_per_min) = record(now);
    let data = json!({
        "online_users": sessions.user_count(),
        "connections": sessions.connection_count(),
        "logins_per_min": round1(logins_per_min),
        "messages_per_min": round1(messages_per_min),
        "logins_total": logins_total as u64,
        "messages_total": messages_total as u64,
        "scope": "node",
    });
    Ok(Envelope::full(&ctx, "get", "/stats").data(data))
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Adds a sample and returns the per-minute rates against the newest sample at least
/// [`RATE_WINDOW`] old (or, while the history is shorter, the events seen since the oldest).
fn record(now: Sample) -> (f64, f64) {
    let mut history = HISTORY.lock().unwrap_or_else(|e| e.into_inner());
    while history
        .front()
        .is_some_and(|s| now.at.duration_since(s.at) > KEEP)
    {
        history.pop_front();
    }
    let base = history
        .iter()
        .rev()
        .find(|s| now.at.duration_since(s.at) >= RATE_WINDOW)
        .or_else(|| history.front())
        .copied();
    // Keep at most one sample per second (many consoles may poll).
    if history
        .back()
        .is_none_or(|s| now.at.duration_since(s.at) >= Duration::from_secs(1))
    {
        history.push_back(now);
    }
    rates(base, now)
}

fn rates(base: Option<Sample>, now: Sample) -> (f64, f64) {
    let Some(base) = base else {
        return (0.0, 0.0);
    };
    let secs = now.at.duration_since(base.at).as_secs_f64();
    if secs < 1.0 {
        return (0.0, 0.0);
    }
    // Over less than a minute of history, count what was seen rather than extrapolate.
    let minutes = secs.max(RATE_WINDOW.as_secs_f64()) / 60.0;
    let per_min = |a: f64, b: f64| (b - a).max(0.0) / minutes;
    (
        per_min(base.logins, now.logins),
        per_min(base.messages, now.messages),
    )
}

/// Sum of a counter's series in Prometheus text, optionally only those whose labels
/// contain `label`.
fn counter(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| metric_name(l) == Some(name))
        .filter(|l| label.is_none_or(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn metric_name(line: &str) -> Option<&str> {
    if line.starts_with('#') {
        return None;
    }
    let end = line.find(['{', ' '])?;
    Some(&line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE ferrim_logins_total counter\n\
        ferrim_logins_total{result=\"ok\"} 7\n\
        ferrim_logins_total{result=\"bad_token\"} 2\n\
        ferrim_logins_total_other 100\n\
        ferrim_messages_total{kind=\"chat\"} 3\n\
        ferrim_messages_total{kind=\"cmd\"} 4\n";

    #[test]
    fn counters_are_summed_by_name_and_label() {
        assert_eq!(
            counter(TEXT, "ferrim_logins_total", Some("result=\"ok\"")),
            7.0
        );
        assert_eq!(counter(TEXT, "ferrim_logins_total", None), 9.0);
        assert_eq!(counter(TEXT, "ferrim_messages_total", None), 7.0);
        assert_eq!(counter(TEXT, "nothing", None), 0.0);
    }

    #[test]
    fn rates_are_per_minute() {
        let t0 = Instant::now();
        let base = Sample {
            at: t0,
            logins: 10.0,
            messages: 0.0,
        };
        let now = Sample {
            at: t0 + Duration::from_secs(30),
            logins: 13.0,
            messages: 60.0,
        };
        // Less than a minute observed: the counts seen so far.
        assert_eq!(rates(Some(base), now), (3.0, 60.0));
        let later = Sample {
            at: t0 + Duration::from_secs(120),
            logins: 14.0,
            messages: 240.0,
        };
        assert_eq!(rates(Some(base), later), (2.0, 120.0));
        assert_eq!(rates(None, now), (0.0, 0.0));
    }
}
