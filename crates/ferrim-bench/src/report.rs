//! Side-by-side report: one table with both servers and the ratio, the per-step tables of
//! each, and the charts.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::chart::{latency_chart, Series};
use crate::stats::fmt_ms;
use crate::workloads::SuiteResult;

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:.digits$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}×", a / b),
        _ => "–".to_owned(),
    }
}

struct Row {
    figure: &'static str,
    a: Option<f64>,
    b: Option<f64>,
    digits: usize,
}

fn rows(a: &SuiteResult, b: &SuiteResult) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut add = |figure, f: &dyn Fn(&SuiteResult) -> Option<f64>, digits| {
        rows.push(Row {
            figure,
            a: f(a),
            b: f(b),
            digits,
        })
    };
    add(
        "W0 registrations/s",
        &|r| r.register.as_ref().map(|x| x.users_per_sec),
        0,
    );
    add(
        "W1 logins/s, ≥99.9% ok and p99 < 1 s",
        &|r| r.login.as_ref().and_then(|x| x.max_rate_p99_1s),
        0,
    );
    add(
        "W1 logins/s, ≥99.9% ok and p99 < 10 ms",
        &|r| r.login.as_ref().and_then(|x| x.max_rate_p99_10ms),
        0,
    );
    add(
        "W1 highest step achieved logins/s",
        &|r| {
            r.login
                .as_ref()
                .and_then(|x| x.steps.iter().map(|s| s.achieved_per_sec).reduce(f64::max))
        },
        0,
    );
    add(
        "W2 connections held",
        &|r| r.idle.as_ref().map(|x| x.connected as f64),
        0,
    );
    add(
        "W2 server RSS per idle connection, bytes",
        &|r| r.idle.as_ref().and_then(|x| x.bytes_per_conn),
        0,
    );
    add(
        "W2 server CPU while idle, % of a core",
        &|r| r.idle.as_ref().and_then(|x| x.idle_cpu_pct),
        1,
    );
    add(
        "W3 msgs/s delivered, p99 < 10 ms, no loss",
        &|r| r.chat.as_ref().and_then(|x| x.max_delivered_p99_10ms),
        0,
    );
    add(
        "W3 msgs/s delivered, p99 < 1 s, no loss",
        &|r| r.chat.as_ref().and_then(|x| x.max_delivered_p99_1s),
        0,
    );
    add(
        "W3 messages lost (all steps)",
        &|r| {
            r.chat
                .as_ref()
                .map(|x| x.steps.iter().map(|s| s.lost).sum::<u64>() as f64)
        },
        0,
    );
    add(
        "W3 duplicates (all steps)",
        &|r| {
            r.chat
                .as_ref()
                .map(|x| x.steps.iter().map(|s| s.duplicates).sum::<u64>() as f64)
        },
        0,
    );
    add(
        "W4 login → last offline message p50, ms",
        &|r| r.offline.as_ref().map(|x| x.latency.p50_ms),
        2,
    );
    add(
        "W4 login → last offline message p99, ms",
        &|r| r.offline.as_ref().map(|x| x.latency.p99_ms),
        2,
    );
    add(
        "W5 kick latency p50, ms",
        &|r| r.kick.as_ref().map(|x| x.kick_latency.p50_ms),
        2,
    );
    add(
        "W5 kick latency p99, ms",
        &|r| r.kick.as_ref().map(|x| x.kick_latency.p99_ms),
        2,
    );
    add(
        "W5 users with exactly one (the earliest) kicked",
        &|r| r.kick.as_ref().map(|x| x.earliest_kicked as f64),
        0,
    );
    rows
}

/// The side-by-side table (markdown); figures of workloads neither run ran are left out.
pub fn comparison_table(a: &SuiteResult, b: &SuiteResult, a_name: &str, b_name: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| figure | {a_name} | {b_name} | {a_name}/{b_name} |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for r in rows(a, b)
        .into_iter()
        .filter(|r| r.a.is_some() || r.b.is_some())
    {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            r.figure,
            num(r.a, r.digits),
            num(r.b, r.digits),
            ratio(r.a, r.b)
        );
    }
    s
}

/// Per-step tables of one server (markdown).
pub fn detail_tables(r: &SuiteResult, name: &str) -> String {
    let mut s = String::new();
    if let Some(w) = &r.register {
        let _ = writeln!(
            s,
            "**{name} W0 register** ({}): {} requested, {} created, {} existed, {} failed in {:.2} s → {:.0} users/s\n",
            w.method, w.requested, w.created, w.already_existed, w.failed, w.seconds, w.users_per_sec
        );
    }
    if let Some(w) = &r.login {
        let _ = writeln!(s, "**{name} W1 login storm**\n");
        let _ = writeln!(s, "| offered/s | ok | failed | success % | achieved/s | p50 ms | p99 ms | p99.9 ms | server CPU % |");
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for st in &w.steps {
            let _ = writeln!(
                s,
                "| {:.0} | {} | {} | {:.2} | {:.0} | {} | {} | {} | {} |",
                st.offered_per_sec,
                st.ok,
                st.failed,
                st.success_pct,
                st.achieved_per_sec,
                fmt_ms(st.latency.p50_ms),
                fmt_ms(st.latency.p99_ms),
                fmt_ms(st.latency.p999_ms),
                num(st.server_cpu_pct, 0)
            );
        }
        let errs: Vec<&str> = w
            .steps
            .iter()
            .filter_map(|x| x.first_error.as_deref())
            .collect();
        if let Some(e) = errs.first() {
            let _ = writeln!(s, "\nFirst login error: `{}`", e.replace('`', "'"));
        }
        s.push('\n');
    }
    if let Some(w) = &r.idle {
        let _ = writeln!(
            s,
            "**{name} W2 idle hold**: {} of {} connected in {:.1} s ({} failed), held {:.1} s with heartbeats, {} closed during the hold; server RSS {} → {} KiB = {} bytes per connection; server CPU {} % of a core\n",
            w.connected,
            w.wanted,
            w.connect_secs,
            w.failed,
            w.hold_secs,
            w.closed_during_hold,
            w.rss_before_kib.map_or("–".into(), |v| v.to_string()),
            w.rss_after_kib.map_or("–".into(), |v| v.to_string()),
            num(w.bytes_per_conn, 0),
            num(w.idle_cpu_pct, 1)
        );
    }
    if let Some(w) = &r.chat {
        // Columns for messages between nodes only when the run was against several.
        let nodes = w.steps.iter().any(|st| st.cross_node > 0);
        let _ = writeln!(s, "**{name} W3 one-to-one chat**\n");
        let _ = write!(s, "| offered/s | conns | sent | delivered | lost | dups | delivered/s | p50 ms | p99 ms | p99.9 ms | server CPU % |");
        if nodes {
            let _ = write!(s, " cross-node % | cross-node p50 ms | cross-node p99 ms |");
        }
        let _ = write!(
            s,
            "\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        if nodes {
            let _ = write!(s, "---:|---:|---:|");
        }
        s.push('\n');
        for st in &w.steps {
            let _ = write!(
                s,
                "| {:.0} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} |",
                st.offered_per_sec,
                st.connections,
                st.sent_ok,
                st.delivered,
                st.lost,
                st.duplicates,
                st.delivered_per_sec,
                fmt_ms(st.latency.p50_ms),
                fmt_ms(st.latency.p99_ms),
                fmt_ms(st.latency.p999_ms),
                num(st.server_cpu_pct, 0)
            );
            if nodes {
                let _ = write!(
                    s,
                    " {:.1} | {} | {} |",
                    100.0 * st.cross_node as f64 / st.scheduled.max(1) as f64,
                    fmt_ms(st.cross_node_latency.p50_ms),
                    fmt_ms(st.cross_node_latency.p99_ms)
                );
            }
            s.push('\n');
        }
        s.push('\n');
    }
    if let Some(w) = &r.offline {
        let _ = writeln!(
            s,
            "**{name} W4 offline sync**: {} users × {} messages; sent {} ({} failed), logged in {}, complete {}, delivered {}, duplicates {}; login → last message p50 {} ms, p99 {} ms\n",
            w.users, w.msgs_per_user, w.sent_ok, w.send_failed, w.logged_in, w.complete_users,
            w.delivered, w.duplicates, fmt_ms(w.latency.p50_ms), fmt_ms(w.latency.p99_ms)
        );
    }
    if let Some(w) = &r.kick {
        let _ = writeln!(
            s,
            "**{name} W5 kick**: {} users, cap {} + 1 login; exactly one kicked {} (the earliest {}), none {}, several {}, newcomer kicked {}, failed {}; kick latency p50 {} ms, p99 {} ms\n",
            w.users, w.device_cap, w.exactly_one_kicked, w.earliest_kicked, w.no_kick,
            w.several_kicked, w.newcomer_kicked, w.login_failed,
            fmt_ms(w.kick_latency.p50_ms), fmt_ms(w.kick_latency.p99_ms)
        );
    }
    s
}

/// Writes `login-latency.png` and `chat-latency.png` into `dir`; returns the file names.
pub fn charts(
    a: &SuiteResult,
    b: &SuiteResult,
    a_name: &str,
    b_name: &str,
    dir: &Path,
) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut login = Vec::new();
    let mut chat = Vec::new();
    for (k, (r, name)) in [(a, a_name), (b, b_name)].into_iter().enumerate() {
        if let Some(l) = &r.login {
            for (q, dashed) in [("p50", true), ("p99", false)] {
                login.push(Series {
                    label: format!("{name} {q}"),
                    points: l
                        .steps
                        .iter()
                        .filter(|s| s.ok > 0)
                        .map(|s| {
                            let y = if dashed {
                                s.latency.p50_ms
                            } else {
                                s.latency.p99_ms
                            };
                            (s.offered_per_sec, y)
                        })
                        .collect(),
                    server: k,
                    dashed,
                });
            }
        }
        if let Some(c) = &r.chat {
            for (q, dashed) in [("p50", true), ("p99", false)] {
                chat.push(Series {
                    label: format!("{name} {q}"),
                    points: c
                        .steps
                        .iter()
                        .filter(|s| s.delivered > 0)
                        .map(|s| {
                            let y = if dashed {
                                s.latency.p50_ms
                            } else {
                                s.latency.p99_ms
                            };
                            (s.offered_per_sec, y)
                        })
                        .collect(),
                    server: k,
                    dashed,
                });
            }
        }
    }
    if !login.is_empty() {
        latency_chart(
            &dir.join("login-latency.png"),
            "W1 login latency vs offered rate",
            "offered logins/s",
            &login,
        )?;
        written.push("login-latency.png".to_owned());
    }
    if !chat.is_empty() {
        latency_chart(
            &dir.join("chat-latency.png"),
            "W3 one-to-one delivery latency vs offered rate",
            "offered messages/s",
            &chat,
        )?;
        written.push("chat-latency.png".to_owned());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::LatencySummary;
    use crate::workloads::{ChatResult, ChatStep};

    fn chat_run(cross_node: u64) -> SuiteResult {
        let step = ChatStep {
            offered_per_sec: 100.0,
            connections: 10,
            scheduled: 300,
            sent_ok: 300,
            send_failed: 0,
            delivered: 300,
            delivered_per_sec: 99.0,
            lost: 0,
            duplicates: 0,
            latency: LatencySummary::default(),
            cross_node,
            cross_node_latency: LatencySummary::default(),
            server_cpu_pct: Some(10.0),
            first_error: None,
        };
        SuiteResult {
            chat: Some(ChatResult {
                steps: vec![step],
                ..ChatResult::default()
            }),
            ..SuiteResult::default()
        }
    }

    #[test]
    fn cross_node_columns_only_for_several_nodes() {
        let one = detail_tables(&chat_run(0), "1 node");
        assert!(!one.contains("cross-node"), "{one}");
        let two = detail_tables(&chat_run(150), "2 nodes");
        assert!(two.contains("| cross-node % |"), "{two}");
        assert!(two.contains("| 50.0 |"), "{two}");
        // Header, separator and row have the same number of cells.
        let cells: Vec<usize> = two
            .lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| l.matches('|').count())
            .collect();
        assert_eq!(cells.len(), 3, "{two}");
        assert!(cells.iter().all(|&c| c == cells[0]), "{two}");
    }

    #[test]
    fn comparison_leaves_out_workloads_neither_ran() {
        let t = comparison_table(&chat_run(0), &chat_run(150), "1 node", "2 nodes");
        assert!(t.contains("W3 messages lost"), "{t}");
        assert!(!t.contains("W0") && !t.contains("W5"), "{t}");
    }
}
