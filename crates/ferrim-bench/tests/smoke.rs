//! Runs every ferrim workload at tiny scale against the real `ferrim` binary and checks the
//! tool's counts (behaviour, never speed).
//!
//! The binary belongs to another package, so `CARGO_BIN_EXE_ferrim` is not available: it is
//! looked up in the target directory next to this crate. `scripts/test` builds every binary
//! of the workspace before running the tests.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrim_bench::ferrim::{FerrimConfig, FerrimTarget};
use ferrim_bench::workloads::{run_suite, SuiteConfig};
use ferrim_bench::Target;

fn ferrim_binary() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let bin = target_dir.join(profile).join("ferrim");
    assert!(
        bin.is_file(),
        "the ferrim binary is missing at {} — build it first (`cargo build --workspace --bins`, \
         as scripts/test does)",
        bin.display()
    );
    bin
}

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
    let child = Command::new(ferrim_binary())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("FERRIM_APP_KEY", "bench#smoke")
        .env("FERRIM_CLIENT_ID", "smoke-id")
        .env("FERRIM_CLIENT_SECRET", "smoke-secret")
        .env("FERRIM_PASSWORD_HASH_COST", "test")
        .env("FERRIM_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("start ferrim");
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "ferrim did not start listening within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn target(base_urls: Vec<String>) -> Target {
    Target::Ferrim(Arc::new(FerrimTarget::new(FerrimConfig {
        base_urls,
        app_key: "bench#smoke".into(),
        client_id: "smoke-id".into(),
        client_secret: "smoke-secret".into(),
        user_prefix: "smoke".into(),
        hash_cost: "test".into(),
    })))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_counts_right_at_tiny_scale() {
    let server = start_server();
    let target = target(vec![server.url.clone()]);
    let cfg = SuiteConfig::tiny();
    let pid = server.child.id();
    let res = run_suite(&target, &cfg, &[pid]).await.expect("suite runs");

    let reg = res.register.expect("W0 ran");
    assert_eq!(reg.created, cfg.total_users(), "{reg:?}");
    assert_eq!(reg.failed, 0);

    let login = res.login.expect("W1 ran");
    assert_eq!(login.steps.len(), cfg.login_rates.len());
    for s in &login.steps {
        assert_eq!(s.failed, 0, "{s:?}");
        assert_eq!(s.ok, s.attempted, "{s:?}");
        assert_eq!(s.latency.count, s.ok);
    }

    let idle = res.idle.expect("W2 ran");
    assert_eq!(idle.connected, cfg.idle_conns, "{idle:?}");
    assert_eq!(idle.closed_during_hold, 0, "{idle:?}");
    assert!(idle.rss_after_kib.is_some(), "RSS read from /proc");

    let chat = res.chat.expect("W3 ran");
    assert_eq!(chat.steps.len(), cfg.chat_rates.len());
    for s in &chat.steps {
        assert_eq!(s.send_failed, 0, "{s:?}");
        assert_eq!(s.sent_ok, s.scheduled, "{s:?}");
        assert_eq!(s.delivered, s.sent_ok, "messages sent = delivered: {s:?}");
        assert_eq!(s.lost, 0, "{s:?}");
        assert_eq!(s.duplicates, 0, "{s:?}");
        assert_eq!(s.latency.count, s.delivered);
        assert_eq!(s.cross_node, 0, "one node: nothing crosses: {s:?}");
    }

    let off = res.offline.expect("W4 ran");
    let waiting = (cfg.offline_users * cfg.offline_msgs) as u64;
    assert_eq!(off.sent_ok, waiting, "{off:?}");
    assert_eq!(off.logged_in, cfg.offline_users as u64, "{off:?}");
    assert_eq!(off.delivered, waiting, "{off:?}");
    assert_eq!(off.complete_users, cfg.offline_users as u64, "{off:?}");
    assert_eq!(off.duplicates, 0, "{off:?}");

    let kick = res.kick.expect("W5 ran");
    assert_eq!(kick.login_failed, 0, "{kick:?}");
    assert_eq!(kick.exactly_one_kicked, cfg.kick_users as u64, "{kick:?}");
    assert_eq!(kick.earliest_kicked, cfg.kick_users as u64, "{kick:?}");
    assert_eq!(kick.newcomer_kicked, 0, "{kick:?}");
    assert_eq!(kick.kick_latency.count, cfg.kick_users as u64);
}

/// The cluster path (several base URLs, several pids) against one server given twice: the
/// tool treats it as two nodes, so connections alternate between "nodes" and about half the
/// chat messages count as crossing; every count must still be exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_node_urls_spread_connections_and_count_right() {
    let server = start_server();
    let target = target(vec![server.url.clone(), format!("{}/", server.url)]);
    assert_eq!(target.nodes(), 2);
    let cfg = SuiteConfig {
        workloads: ["register", "login", "chat", "kick"]
            .map(String::from)
            .to_vec(),
        ..SuiteConfig::tiny()
    };
    let pid = server.child.id();
    let res = run_suite(&target, &cfg, &[pid, pid])
        .await
        .expect("suite runs");

    let reg = res.register.expect("W0 ran");
    assert_eq!(reg.created, cfg.total_users(), "{reg:?}");

    let login = res.login.expect("W1 ran");
    for s in &login.steps {
        assert_eq!(s.ok, s.attempted, "{s:?}");
    }

    let chat = res.chat.expect("W3 ran");
    assert_eq!(chat.steps.len(), cfg.chat_rates.len());
    for s in &chat.steps {
        assert_eq!(s.connections, cfg.idle_conns, "{s:?}");
        assert_eq!(s.sent_ok, s.scheduled, "{s:?}");
        assert_eq!(s.delivered, s.sent_ok, "{s:?}");
        assert_eq!(s.lost, 0, "{s:?}");
        assert_eq!(s.duplicates, 0, "{s:?}");
        // 8 connections, 4 per "node": a random other peer is on the other one 4 times in 7.
        assert!(
            s.cross_node > 0 && s.cross_node < s.scheduled,
            "messages cross nodes some of the time: {s:?}"
        );
        assert_eq!(s.cross_node_latency.count, s.cross_node, "{s:?}");
        assert!(s.server_cpu_pct.is_some(), "CPU summed over the pids");
    }

    // The devices of one user alternate between the URLs; the cap still holds.
    let kick = res.kick.expect("W5 ran");
    assert_eq!(kick.exactly_one_kicked, cfg.kick_users as u64, "{kick:?}");
    assert_eq!(kick.earliest_kicked, cfg.kick_users as u64, "{kick:?}");
}
