//! The workloads W0–W5 and the suite that runs them in order against one target.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant as StdInstant};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::openloop;
use crate::procfs::{self, CpuMeter};
use crate::stats::{fmt_ms, Latencies, LatencySummary};
use crate::target::{null_sink, Incoming, RegisterOutcome, Session, Sink, Target};

/// Length of every chat text (the stamp padded with `x`).
pub const TEXT_LEN: usize = 100;

static CLOCK_BASE: OnceLock<StdInstant> = OnceLock::new();

/// Nanoseconds since a process-wide base: the one clock senders stamp and receivers read.
fn clock_ns(at: StdInstant) -> u64 {
    let base = *CLOCK_BASE.get_or_init(StdInstant::now);
    at.saturating_duration_since(base).as_nanos() as u64
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Source addresses `127.0.0.2 ..` for spreading connections over several local IPs.
pub fn source_ips(n: usize) -> Vec<IpAddr> {
    (0..n)
        .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (k % 250) as u8)))
        .collect()
}

/// Everything a suite run does, with its scale.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteConfig {
    /// Workloads to run, e.g. `["register","login","idle","chat","offline","kick"]`.
    pub workloads: Vec<String>,
    /// Users of the main pool (W1 logs them in round-robin; W2/W3 hold `idle_conns` of them).
    pub users: usize,
    pub login_rates: Vec<f64>,
    pub login_step_secs: f64,
    pub idle_conns: usize,
    pub idle_secs: f64,
    pub heartbeat_secs: f64,
    pub connect_rate: f64,
    pub source_ips: usize,
    pub chat_rates: Vec<f64>,
    pub chat_step_secs: f64,
    pub drain_secs: f64,
    pub offline_users: usize,
    pub offline_msgs: usize,
    pub offline_login_rate: f64,
    pub kick_users: usize,
    pub device_cap: u32,
    /// Rising steps stop once p99 exceeds this (ms) or success falls below 99%.
    pub stop_p99_ms: f64,
    pub op_timeout_secs: f64,
}

impl SuiteConfig {
    /// A tiny run: a few users, about a second per step (the smoke test).
    pub fn tiny() -> Self {
        SuiteConfig {
            workloads: ["register", "login", "idle", "chat", "offline", "kick"]
                .map(String::from)
                .to_vec(),
            users: 8,
            login_rates: vec![20.0],
            login_step_secs: 1.0,
            idle_conns: 8,
            idle_secs: 1.0,
            heartbeat_secs: 0.5,
            connect_rate: 50.0,
            source_ips: 2,
            chat_rates: vec![40.0],
            chat_step_secs: 1.0,
            drain_secs: 5.0,
            offline_users: 3,
            offline_msgs: 5,
            offline_login_rate: 10.0,
            kick_users: 2,
            device_cap: 4,
            stop_p99_ms: 1000.0,
            op_timeout_secs: 10.0,
        }
    }

    fn runs(&self, w: &str) -> bool {
        self.workloads.iter().any(|x| x == w || x == "all")
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.op_timeout_secs)
    }

    /// First user index of the W4 receivers.
    fn offline_base(&self) -> usize {
        self.users
    }

    /// First user index of the W5 users.
    fn kick_base(&self) -> usize {
        self.users + self.offline_users
    }

    /// Users the suite needs registered.
    pub fn total_users(&self) -> usize {
        self.users + self.offline_users + self.kick_users
    }
}

/// One rate step of the login storm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginStep {
    pub offered_per_sec: f64,
    pub attempted: u64,
    pub ok: u64,
    pub failed: u64,
    pub success_pct: f64,
    pub achieved_per_sec: f64,
    pub latency: LatencySummary,
    pub server_cpu_pct: Option<f64>,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoginStormResult {
    pub steps: Vec<LoginStep>,
    /// Highest offered rate with ≥ 99.9% success and p99 < 1 s.
    pub max_rate_p99_1s: Option<f64>,
    /// Highest offered rate with ≥ 99.9% success and p99 < 10 ms.
    pub max_rate_p99_10ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdleResult {
    pub wanted: usize,
    pub connected: usize,
    pub failed: usize,
    pub connect_secs: f64,
    pub hold_secs: f64,
    pub closed_during_hold: u64,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// (RSS(N) − RSS(0)) / N in bytes.
    pub bytes_per_conn: Option<f64>,
    /// Server CPU during the hold, % of one core.
    pub idle_cpu_pct: Option<f64>,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatStep {
    pub offered_per_sec: f64,
    pub connections: usize,
    pub scheduled: u64,
    pub sent_ok: u64,
    pub send_failed: u64,
    pub delivered: u64,
    pub delivered_per_sec: f64,
    pub lost: u64,
    pub duplicates: u64,
    pub latency: LatencySummary,
    /// Messages whose sender and recipient were connected to different nodes (a cluster).
    #[serde(default)]
    pub cross_node: u64,
    /// Delivery latency of those of them that arrived.
    #[serde(default)]
    pub cross_node_latency: LatencySummary,
    pub server_cpu_pct: Option<f64>,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatResult {
    pub steps: Vec<ChatStep>,
    /// Highest delivered rate of a step with p99 < 10 ms and nothing lost.
    pub max_delivered_p99_10ms: Option<f64>,
    /// Highest delivered rate of a step with p99 < 1 s and nothing lost.
    pub max_delivered_p99_1s: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OfflineResult {
    pub users: usize,
    pub msgs_per_user: usize,
    pub sent_ok: u64,
    pub send_failed: u64,
    pub logged_in: u64,
    pub complete_users: u64,
    pub delivered: u64,
    pub duplicates: u64,
    /// From each user's scheduled login start to its last waiting message.
    pub latency: LatencySummary,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KickResult {
    pub users: usize,
    pub device_cap: u32,
    /// Users whose extra login succeeded and made exactly one earlier session kicked.
    pub exactly_one_kicked: u64,
    /// Of those, how many kicked the earliest session.
    pub earliest_kicked: u64,
    pub no_kick: u64,
    pub several_kicked: u64,
    pub newcomer_kicked: u64,
    pub login_failed: u64,
    /// From the start of the extra login to the kick arriving at the old session.
    pub kick_latency: LatencySummary,
    pub first_error: Option<String>,
}

/// Everything a suite run produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SuiteResult {
    pub target: String,
    pub server_version: String,
    pub config: Option<SuiteConfig>,
    pub register: Option<RegisterOutcome>,
    pub login: Option<LoginStormResult>,
    pub idle: Option<IdleResult>,
    pub chat: Option<ChatResult>,
    pub offline: Option<OfflineResult>,
    pub kick: Option<KickResult>,
}

fn keep_first(slot: &Mutex<Option<String>>, e: impl std::fmt::Display) {
    let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
    if s.is_none() {
        *s = Some(e.to_string());
    }
}

fn take(slot: &Mutex<Option<String>>) -> Option<String> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// W1: logins at rising rates, each closed right after it succeeded.
pub async fn login_storm(t: &Target, cfg: &SuiteConfig, pids: &[u32]) -> LoginStormResult {
    let mut out = LoginStormResult::default();
    let mut next_user = 0u64;
    println!(
        "\nW1 login storm ({}): TCP + upgrade + login + reply, then close",
        t.kind()
    );
    println!(
        "{:>9} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7}",
        "offered/s", "ok", "failed", "success%", "done/s", "p50 ms", "p99 ms", "p99.9", "cpu%"
    );
    for &rate in &cfg.login_rates {
        let count = (rate * cfg.login_step_secs).round().max(1.0) as u64;
        let lat = Arc::new(Latencies::new());
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let err = Arc::new(Mutex::new(None));
        let cpu = CpuMeter::start(pids);
        let started = Instant::now();
        let base = next_user;
        let users = cfg.users.max(1) as u64;
        let timeout = cfg.timeout();
        openloop::run(rate, count, |i, due| {
            let (t, lat, ok, failed, err) = (
                t.clone(),
                lat.clone(),
                ok.clone(),
                failed.clone(),
                err.clone(),
            );
            let user = ((base + i) % users) as usize;
            let resource = format!("w1_{}", base + i);
            async move {
                match t.login_and_drop(user, &resource, None, timeout).await {
                    Ok(done) => {
                        lat.record(done.saturating_duration_since(due));
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        keep_first(&err, format!("{e:#}"));
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
        .await;
        next_user += count;
        let secs = started.elapsed().as_secs_f64();
        let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        let step = LoginStep {
            offered_per_sec: rate,
            attempted: count,
            ok,
            failed,
            success_pct: 100.0 * ok as f64 / count as f64,
            achieved_per_sec: ok as f64 / secs.max(1e-9),
            latency: lat.summary(),
            server_cpu_pct: cpu.percent(),
            first_error: take(&err),
        };
        println!(
            "{:>9.0} {:>8} {:>8} {:>9.2} {:>9.0} {:>8} {:>8} {:>8} {:>7}",
            rate,
            step.ok,
            step.failed,
            step.success_pct,
            step.achieved_per_sec,
            fmt_ms(step.latency.p50_ms),
            fmt_ms(step.latency.p99_ms),
            fmt_ms(step.latency.p999_ms),
            step.server_cpu_pct
                .map_or("-".into(), |c| format!("{c:.0}")),
        );
        if let Some(e) = &step.first_error {
            println!("          first error: {e}");
        }
        let good = step.success_pct >= 99.9;
        if good && step.latency.p99_ms < 1000.0 {
            out.max_rate_p99_1s = Some(out.max_rate_p99_1s.unwrap_or(0.0).max(rate));
        }
        if good && step.latency.p99_ms < 10.0 {
            out.max_rate_p99_10ms = Some(out.max_rate_p99_10ms.unwrap_or(0.0).max(rate));
        }
        let stop = step.success_pct < 99.0 || step.latency.p99_ms > cfg.stop_p99_ms;
        out.steps.push(step);
        if stop {
            break;
        }
        // Let TIME_WAIT sockets and the server's session table settle between steps.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    out
}

/// Per-step bookkeeping of the chat workload, shared by every receiving session.
struct ChatStepBook {
    received: Vec<AtomicU8>,
    /// Whether message `seq` crosses nodes (sender and recipient on different ones).
    cross: Vec<bool>,
    unique: AtomicU64,
    duplicates: AtomicU64,
    lat: Latencies,
    lat_cross: Latencies,
}

/// Routes received chat texts (`c:<step>:<seq>:<sched_ns>:xxxx`) to their step's book.
#[derive(Default)]
pub struct ChatRecorder {
    steps: RwLock<Vec<Arc<ChatStepBook>>>,
    pub kicked: AtomicU64,
    pub closed: AtomicU64,
    pub stray: AtomicU64,
}

impl ChatRecorder {
    /// A step of `cross.len()` messages; `cross[seq]` tells whether message `seq` crosses
    /// nodes.
    fn new_step(&self, cross: Vec<bool>) -> usize {
        let book = Arc::new(ChatStepBook {
            received: cross.iter().map(|_| AtomicU8::new(0)).collect(),
            cross,
            unique: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            lat: Latencies::new(),
            lat_cross: Latencies::new(),
        });
        let mut steps = self.steps.write().unwrap_or_else(|p| p.into_inner());
        steps.push(book);
        steps.len() - 1
    }

    fn book(&self, step: usize) -> Option<Arc<ChatStepBook>> {
        self.steps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(step)
            .cloned()
    }

    fn on_incoming(&self, inc: Incoming) {
        match inc {
            Incoming::Message { text } => {
                let now = StdInstant::now();
                let mut parts = text.split(':');
                let parsed = (|| {
                    if parts.next()? != "c" {
                        return None;
                    }
                    let step: usize = parts.next()?.parse().ok()?;
                    let seq: usize = parts.next()?.parse().ok()?;
                    let sched: u64 = parts.next()?.parse().ok()?;
                    Some((step, seq, sched))
                })();
                let Some((step, seq, sched)) = parsed else {
                    self.stray.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let Some(book) = self.book(step) else {
                    self.stray.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let Some(slot) = book.received.get(seq) else {
                    self.stray.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                if slot.fetch_add(1, Ordering::Relaxed) == 0 {
                    book.unique.fetch_add(1, Ordering::Relaxed);
                    let d = Duration::from_nanos(clock_ns(now).saturating_sub(sched));
                    book.lat.record(d);
                    if book.cross[seq] {
                        book.lat_cross.record(d);
                    }
                } else {
                    book.duplicates.fetch_add(1, Ordering::Relaxed);
                }
            }
            Incoming::Kicked => {
                self.kicked.fetch_add(1, Ordering::Relaxed);
            }
            Incoming::Closed => {
                self.closed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A sink feeding this recorder.
    pub fn sink(self: &Arc<Self>) -> Sink {
        let me = self.clone();
        Arc::new(move |inc| me.on_incoming(inc))
    }
}

fn chat_text(step: usize, seq: u64, sched_ns: u64) -> String {
    let mut s = format!("c:{step}:{seq}:{sched_ns}:");
    while s.len() < TEXT_LEN {
        s.push('x');
    }
    s
}

/// Logs users `first..first + n` in at `rate`/s over the given source addresses.
/// Returns the sessions (with their user index) and the failures.
pub async fn connect_many(
    t: &Target,
    first: usize,
    n: usize,
    rate: f64,
    srcs: &[IpAddr],
    sink: Sink,
    timeout: Duration,
) -> (Vec<(usize, Session)>, usize, Option<String>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let err = Arc::new(Mutex::new(None));
    let failed = Arc::new(AtomicU64::new(0));
    let srcs = srcs.to_vec();
    openloop::run(rate, n as u64, |i, _due| {
        let (t, tx, sink, err, failed) = (
            t.clone(),
            tx.clone(),
            sink.clone(),
            err.clone(),
            failed.clone(),
        );
        let src = (!srcs.is_empty()).then(|| srcs[i as usize % srcs.len()]);
        let user = first + i as usize;
        async move {
            match t
                .login(user, &format!("held_{user}"), src, sink, timeout)
                .await
            {
                Ok(s) => {
                    let _ = tx.send((user, s));
                }
                Err(e) => {
                    keep_first(&err, format!("{e:#}"));
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
    .await;
    drop(tx);
    let mut sessions = Vec::with_capacity(n);
    while let Some(s) = rx.recv().await {
        sessions.push(s);
    }
    sessions.sort_by_key(|(u, _)| *u);
    let e = take(&err);
    (sessions, failed.load(Ordering::Relaxed) as usize, e)
}

/// W2: hold `sessions` for `cfg.idle_secs` with heartbeats; RSS and CPU of the server.
pub async fn idle_hold(
    sessions: &[(usize, Session)],
    cfg: &SuiteConfig,
    pids: &[u32],
    rec: &ChatRecorder,
    result: &mut IdleResult,
) {
    let closed_before = rec.closed.load(Ordering::Relaxed);
    let cpu = CpuMeter::start(pids);
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(cfg.idle_secs);
    let hb = Duration::from_secs_f64(cfg.heartbeat_secs.max(0.05));
    // Heartbeats spread evenly: every session once per `hb`.
    let mut round = 0u64;
    'hold: while Instant::now() < end {
        let round_start = started + hb * round as u32;
        for (k, (_, s)) in sessions.iter().enumerate() {
            let due = round_start + hb.mul_f64(k as f64 / sessions.len().max(1) as f64);
            if due >= end {
                break 'hold;
            }
            tokio::time::sleep_until(due).await;
            let _ = s.heartbeat().await;
        }
        round += 1;
    }
    tokio::time::sleep_until(end).await;
    result.hold_secs = started.elapsed().as_secs_f64();
    result.idle_cpu_pct = cpu.percent();
    result.rss_after_kib = procfs::rss_kib(pids);
    result.closed_during_hold = rec.closed.load(Ordering::Relaxed) - closed_before;
    if let (Some(a), Some(b)) = (result.rss_before_kib, result.rss_after_kib) {
        if result.connected > 0 {
            result.bytes_per_conn = Some((b as f64 - a as f64) * 1024.0 / result.connected as f64);
        }
    }
}

/// W3: one-to-one chat between the held sessions at rising aggregate rates.
pub async fn chat(
    sessions: &Arc<Vec<(usize, Session)>>,
    t: &Target,
    cfg: &SuiteConfig,
    pids: &[u32],
    rec: &Arc<ChatRecorder>,
) -> ChatResult {
    let mut out = ChatResult::default();
    let nodes = t.nodes();
    println!(
        "\nW3 one-to-one chat ({}): {} connections, {}-byte texts to random online peers",
        t.kind(),
        sessions.len(),
        TEXT_LEN
    );
    if nodes > 1 {
        let mut per_node = vec![0usize; nodes];
        for (_, s) in sessions.iter() {
            per_node[s.node().min(nodes - 1)] += 1;
        }
        println!("  {nodes} nodes, connections per node {per_node:?}; x-node = sender and recipient on different nodes");
    }
    print!(
        "{:>9} {:>8} {:>9} {:>7} {:>5} {:>10} {:>8} {:>8} {:>8} {:>7}",
        "offered/s",
        "sent",
        "delivered",
        "lost",
        "dups",
        "deliv/s",
        "p50 ms",
        "p99 ms",
        "p99.9",
        "cpu%"
    );
    if nodes > 1 {
        print!(" {:>8} {:>8} {:>8}", "x-node%", "x p50", "x p99");
    }
    println!();
    if sessions.len() < 2 {
        return out;
    }
    let names: Arc<Vec<String>> = Arc::new(sessions.iter().map(|(u, _)| t.user(*u)).collect());
    let n = sessions.len() as u64;
    for (k, &rate) in cfg.chat_rates.iter().enumerate() {
        let count = (rate * cfg.chat_step_secs).round().max(1.0) as u64;
        // Who sends to whom is drawn up front, so the recorder knows which messages cross
        // nodes before any arrives.
        let pairs: Arc<Vec<(usize, usize)>> = Arc::new(
            (0..count)
                .map(|i| {
                    let r = splitmix(i ^ ((k as u64) << 40));
                    let from = r % n;
                    let to = (from + 1 + (r >> 32) % (n - 1)) % n;
                    (from as usize, to as usize)
                })
                .collect(),
        );
        let cross: Vec<bool> = pairs
            .iter()
            .map(|&(from, to)| sessions[from].1.node() != sessions[to].1.node())
            .collect();
        let cross_node = cross.iter().filter(|&&c| c).count() as u64;
        let step = rec.new_step(cross);
        let book = rec.book(step).expect("just created");
        let sent_ok = Arc::new(AtomicU64::new(0));
        let send_failed = Arc::new(AtomicU64::new(0));
        let err = Arc::new(Mutex::new(None));
        let cpu = CpuMeter::start(pids);
        let started = Instant::now();
        openloop::run(rate, count, |i, due| {
            let (from, to) = pairs[i as usize];
            let text = chat_text(step, i, clock_ns(due.into_std()));
            let (sessions, names, sent_ok, send_failed, err) = (
                sessions.clone(),
                names.clone(),
                sent_ok.clone(),
                send_failed.clone(),
                err.clone(),
            );
            async move {
                match sessions[from].1.send(&names[to], &text).await {
                    Ok(()) => {
                        sent_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        keep_first(&err, format!("{e:#}"));
                        send_failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
        .await;
        let send_secs = started.elapsed().as_secs_f64();
        // Drain: wait until every acknowledged message arrived, or the drain time passed.
        let drain_end = Instant::now() + Duration::from_secs_f64(cfg.drain_secs);
        let delivered_at_send_end = book.unique.load(Ordering::Relaxed);
        while Instant::now() < drain_end
            && book.unique.load(Ordering::Relaxed) < sent_ok.load(Ordering::Relaxed)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A little longer to catch duplicates that trail the last message.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let cpu_pct = cpu.percent();
        let delivered = book.unique.load(Ordering::Relaxed);
        let sent = sent_ok.load(Ordering::Relaxed);
        let st = ChatStep {
            offered_per_sec: rate,
            connections: sessions.len(),
            scheduled: count,
            sent_ok: sent,
            send_failed: send_failed.load(Ordering::Relaxed),
            delivered,
            delivered_per_sec: delivered_at_send_end.max(delivered.min(count)) as f64
                / send_secs.max(1e-9),
            lost: sent.saturating_sub(delivered),
            duplicates: book.duplicates.load(Ordering::Relaxed),
            latency: book.lat.summary(),
            cross_node,
            cross_node_latency: book.lat_cross.summary(),
            server_cpu_pct: cpu_pct,
            first_error: take(&err),
        };
        print!(
            "{:>9.0} {:>8} {:>9} {:>7} {:>5} {:>10.0} {:>8} {:>8} {:>8} {:>7}",
            rate,
            st.sent_ok,
            st.delivered,
            st.lost,
            st.duplicates,
            st.delivered_per_sec,
            fmt_ms(st.latency.p50_ms),
            fmt_ms(st.latency.p99_ms),
            fmt_ms(st.latency.p999_ms),
            st.server_cpu_pct.map_or("-".into(), |c| format!("{c:.0}")),
        );
        if nodes > 1 {
            print!(
                " {:>8.1} {:>8} {:>8}",
                100.0 * st.cross_node as f64 / count as f64,
                fmt_ms(st.cross_node_latency.p50_ms),
                fmt_ms(st.cross_node_latency.p99_ms),
            );
        }
        println!();
        if let Some(e) = &st.first_error {
            println!("          first error: {e}");
        }
        let clean = st.lost == 0 && st.send_failed == 0;
        if clean && st.latency.p99_ms < 10.0 {
            out.max_delivered_p99_10ms = Some(
                out.max_delivered_p99_10ms
                    .unwrap_or(0.0)
                    .max(st.delivered_per_sec),
            );
        }
        if clean && st.latency.p99_ms < 1000.0 {
            out.max_delivered_p99_1s = Some(
                out.max_delivered_p99_1s
                    .unwrap_or(0.0)
                    .max(st.delivered_per_sec),
            );
        }
        let stop = st.latency.p99_ms > cfg.stop_p99_ms
            || st.lost as f64 > 0.01 * count as f64
            || st.send_failed as f64 > 0.01 * count as f64;
        out.steps.push(st);
        if stop {
            break;
        }
    }
    out
}

/// W4: `offline_msgs` messages waiting for each of `offline_users` users, who then log in.
pub async fn offline_sync(t: &Target, cfg: &SuiteConfig) -> OfflineResult {
    let m = cfg.offline_users;
    let k = cfg.offline_msgs;
    let mut out = OfflineResult {
        users: m,
        msgs_per_user: k,
        ..OfflineResult::default()
    };
    let timeout = cfg.timeout();
    let err = Arc::new(Mutex::new(None));
    // Senders: a few users of the main pool (offline at this point).
    let n_senders = m.clamp(1, 10).min(cfg.users.max(1));
    let (senders, _, e) = connect_many(t, 0, n_senders, 50.0, &[], null_sink(), timeout).await;
    if let Some(e) = e {
        keep_first(&err, e);
    }
    if senders.is_empty() {
        out.first_error = take(&err);
        return out;
    }
    let senders = Arc::new(senders);
    let sent_ok = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for r in 0..m {
        for j in 0..k {
            while set.len() >= 64 {
                set.join_next().await;
            }
            let (senders, sent_ok, err) = (senders.clone(), sent_ok.clone(), err.clone());
            let to = t.user(cfg.offline_base() + r);
            let text = format!("o:{r}:{j}:");
            set.spawn(async move {
                let s = &senders[(r + j) % senders.len()].1;
                match s.send(&to, &text).await {
                    Ok(()) => {
                        sent_ok.fetch_add(1, Ordering::Relaxed);
                        true
                    }
                    Err(e) => {
                        keep_first(&err, format!("{e:#}"));
                        false
                    }
                }
            });
        }
    }
    while let Some(r) = set.join_next().await {
        if !matches!(r, Ok(true)) {
            out.send_failed += 1;
        }
    }
    out.sent_ok = sent_ok.load(Ordering::Relaxed);
    // XMPP has no send acknowledgement: give the server a moment to store the last ones.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (_, s) in senders.iter() {
        s.close().await;
    }

    struct Waiting {
        seen: Mutex<HashSet<usize>>,
        dups: AtomicU64,
        start: Mutex<Option<StdInstant>>,
        done: Mutex<Option<Duration>>,
    }
    let lat = Arc::new(Latencies::new());
    let books: Vec<Arc<Waiting>> = (0..m)
        .map(|_| {
            Arc::new(Waiting {
                seen: Mutex::new(HashSet::new()),
                dups: AtomicU64::new(0),
                start: Mutex::new(None),
                done: Mutex::new(None),
            })
        })
        .collect();
    let sessions = Arc::new(Mutex::new(Vec::new()));
    let logged_in = Arc::new(AtomicU64::new(0));
    openloop::run(cfg.offline_login_rate, m as u64, |i, due| {
        let r = i as usize;
        let book = books[r].clone();
        *book.start.lock().unwrap_or_else(|p| p.into_inner()) = Some(due.into_std());
        let lat = lat.clone();
        let prefix = format!("o:{r}:");
        let sink: Sink = Arc::new(move |inc| {
            if let Incoming::Message { text } = inc {
                let Some(j) = text
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.split(':').next())
                    .and_then(|j| j.parse::<usize>().ok())
                else {
                    return;
                };
                let mut seen = book.seen.lock().unwrap_or_else(|p| p.into_inner());
                if !seen.insert(j) {
                    book.dups.fetch_add(1, Ordering::Relaxed);
                } else if seen.len() == k {
                    let start = book
                        .start
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .unwrap();
                    let d = start.elapsed();
                    *book.done.lock().unwrap_or_else(|p| p.into_inner()) = Some(d);
                    lat.record(d);
                }
            }
        });
        let (t, sessions, logged_in, err) =
            (t.clone(), sessions.clone(), logged_in.clone(), err.clone());
        let user = cfg.offline_base() + r;
        async move {
            match t
                .login(user, &format!("off_{user}"), None, sink, timeout)
                .await
            {
                Ok(s) => {
                    logged_in.fetch_add(1, Ordering::Relaxed);
                    sessions.lock().unwrap_or_else(|p| p.into_inner()).push(s);
                }
                Err(e) => keep_first(&err, format!("{e:#}")),
            }
        }
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs_f64(cfg.drain_secs);
    while Instant::now() < deadline
        && books
            .iter()
            .any(|b| b.done.lock().unwrap_or_else(|p| p.into_inner()).is_none())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    out.logged_in = logged_in.load(Ordering::Relaxed);
    for b in &books {
        out.delivered += b.seen.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
        out.duplicates += b.dups.load(Ordering::Relaxed);
        if b.done.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            out.complete_users += 1;
        }
    }
    out.latency = lat.summary();
    let held: Vec<Session> =
        std::mem::take(&mut *sessions.lock().unwrap_or_else(|p| p.into_inner()));
    for s in &held {
        s.close().await;
    }
    out.first_error = take(&err);
    println!(
        "\nW4 offline sync ({}): {m} users × {k} waiting messages",
        t.kind()
    );
    println!(
        "  sent {} (failed {}), logged in {}, complete {}, delivered {}, duplicates {}, login→last message p50 {} ms p99 {} ms",
        out.sent_ok,
        out.send_failed,
        out.logged_in,
        out.complete_users,
        out.delivered,
        out.duplicates,
        fmt_ms(out.latency.p50_ms),
        fmt_ms(out.latency.p99_ms)
    );
    if let Some(e) = &out.first_error {
        println!("  first error: {e}");
    }
    out
}

/// W5: for each user, `device_cap` sessions, then one more login: exactly the earliest
/// session must be kicked.
pub async fn kick(t: &Target, cfg: &SuiteConfig) -> KickResult {
    let cap = cfg.device_cap.max(1) as usize;
    let mut out = KickResult {
        users: cfg.kick_users,
        device_cap: cfg.device_cap,
        ..KickResult::default()
    };
    let lat = Arc::new(Latencies::new());
    let err = Arc::new(Mutex::new(None));
    let timeout = cfg.timeout();
    // Users run concurrently, a few per second.
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    openloop::run(20.0, cfg.kick_users as u64, |i, _| {
        let (t, lat, err, outcomes) = (t.clone(), lat.clone(), err.clone(), outcomes.clone());
        let user = cfg.kick_base() + i as usize;
        async move {
            let o = kick_one(&t, user, cap, timeout, &lat).await;
            if let Err(e) = &o {
                keep_first(&err, format!("{e:#}"));
            }
            outcomes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(o.ok());
        }
    })
    .await;
    for o in outcomes.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        match o {
            None => out.login_failed += 1,
            Some(k) => {
                if k.newcomer_kicked {
                    out.newcomer_kicked += 1;
                }
                match k.kicked.len() {
                    0 => out.no_kick += 1,
                    1 => {
                        out.exactly_one_kicked += 1;
                        if k.kicked[0] == 0 {
                            out.earliest_kicked += 1;
                        }
                    }
                    _ => out.several_kicked += 1,
                }
            }
        }
    }
    out.kick_latency = lat.summary();
    out.first_error = take(&err);
    println!(
        "\nW5 kick ({}): {} users, cap {} + 1 login",
        t.kind(),
        out.users,
        cap
    );
    println!(
        "  exactly one kicked {} (earliest {}), none {}, several {}, newcomer kicked {}, failed {}; kick latency p50 {} ms p99 {} ms",
        out.exactly_one_kicked,
        out.earliest_kicked,
        out.no_kick,
        out.several_kicked,
        out.newcomer_kicked,
        out.login_failed,
        fmt_ms(out.kick_latency.p50_ms),
        fmt_ms(out.kick_latency.p99_ms)
    );
    if let Some(e) = &out.first_error {
        println!("  first error: {e}");
    }
    out
}

struct KickOne {
    kicked: Vec<usize>,
    newcomer_kicked: bool,
}

async fn kick_one(
    t: &Target,
    user: usize,
    cap: usize,
    timeout: Duration,
    lat: &Latencies,
) -> Result<KickOne> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, StdInstant)>();
    let mut sessions = Vec::new();
    for d in 0..=cap {
        let tx = tx.clone();
        let sink: Sink = Arc::new(move |inc| {
            if inc == Incoming::Kicked {
                let _ = tx.send((d, StdInstant::now()));
            }
        });
        if d == cap {
            // Let the earlier logins settle so "earliest" is well defined.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let start = StdInstant::now();
        let s = t
            .login(user, &format!("kick_{user}_{d}"), None, sink, timeout)
            .await;
        let s = match s {
            Ok(s) => s,
            Err(e) => {
                for s in &sessions {
                    Session::close(s).await;
                }
                return Err(e);
            }
        };
        sessions.push(s);
        if d == cap {
            let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
            let mut kicked = Vec::new();
            if let Ok(Some((who, at))) = first {
                lat.record(at.saturating_duration_since(start));
                kicked.push(who);
                // Anything else kicked shortly after?
                tokio::time::sleep(Duration::from_millis(300)).await;
                while let Ok((who, _)) = rx.try_recv() {
                    kicked.push(who);
                }
            }
            let newcomer_kicked = kicked.contains(&cap);
            kicked.retain(|&w| w != cap);
            for s in &sessions {
                s.close().await;
            }
            return Ok(KickOne {
                kicked,
                newcomer_kicked,
            });
        }
    }
    unreachable!("the loop returns on its last iteration")
}

/// Runs the configured workloads in order and returns their results. `pids` are the
/// server's processes (a cluster's nodes) for RSS and CPU readings, summed.
pub async fn run_suite(t: &Target, cfg: &SuiteConfig, pids: &[u32]) -> Result<SuiteResult> {
    let mut res = SuiteResult {
        target: t.kind().to_owned(),
        config: Some(cfg.clone()),
        ..SuiteResult::default()
    };
    let fds = procfs::raise_nofile();
    tracing::info!(fds, "open-file limit");
    if cfg.runs("register") {
        let r = t.register(0, cfg.total_users()).await?;
        println!("\nW0 register ({}): {}", t.kind(), r.method);
        println!(
            "  {} requested, {} created, {} existed, {} failed in {:.2} s: {:.0} users/s",
            r.requested, r.created, r.already_existed, r.failed, r.seconds, r.users_per_sec
        );
        res.register = Some(r);
    }
    t.prepare_logins(0, cfg.total_users()).await?;
    t.set_device_cap(cfg.device_cap).await?;
    if cfg.runs("idle") || cfg.runs("chat") {
        let rec = Arc::new(ChatRecorder::default());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut idle = IdleResult {
            wanted: cfg.idle_conns,
            rss_before_kib: procfs::rss_kib(pids),
            ..IdleResult::default()
        };
        let started = Instant::now();
        let n = cfg.idle_conns.min(cfg.users);
        let (sessions, failed, e) = connect_many(
            t,
            0,
            n,
            cfg.connect_rate,
            &source_ips(cfg.source_ips),
            rec.sink(),
            cfg.timeout(),
        )
        .await;
        idle.connect_secs = started.elapsed().as_secs_f64();
        idle.connected = sessions.len();
        idle.failed = failed;
        idle.first_error = e;
        let sessions = Arc::new(sessions);
        if cfg.runs("idle") {
            idle_hold(&sessions, cfg, pids, &rec, &mut idle).await;
            println!("\nW2 idle hold ({})", t.kind());
            println!(
                "  {} of {} connected in {:.1} s ({} failed), held {:.1} s, {} closed; RSS {} → {} KiB: {} bytes/conn; idle CPU {}%",
                idle.connected,
                idle.wanted,
                idle.connect_secs,
                idle.failed,
                idle.hold_secs,
                idle.closed_during_hold,
                idle.rss_before_kib.map_or("-".into(), |v| v.to_string()),
                idle.rss_after_kib.map_or("-".into(), |v| v.to_string()),
                idle.bytes_per_conn.map_or("-".into(), |v| format!("{v:.0}")),
                idle.idle_cpu_pct.map_or("-".into(), |v| format!("{v:.1}")),
            );
            if let Some(e) = &idle.first_error {
                println!("  first error: {e}");
            }
            res.idle = Some(idle);
        }
        if cfg.runs("chat") {
            res.chat = Some(chat(&sessions, t, cfg, pids, &rec).await);
        }
        for (_, s) in sessions.iter() {
            s.close().await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The storm runs after W2 so RSS(0) is not inflated by memory its sessions left behind.
    if cfg.runs("login") {
        res.login = Some(login_storm(t, cfg, pids).await);
    }
    if cfg.runs("offline") {
        res.offline = Some(offline_sync(t, cfg).await);
    }
    if cfg.runs("kick") {
        res.kick = Some(kick(t, cfg).await);
    }
    Ok(res)
}
