//! `ferrim-bench`: see the library docs and docs/benchmarks.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use ferrim_bench::ferrim::{FerrimConfig, FerrimTarget};
use ferrim_bench::workloads::{run_suite, SuiteConfig, SuiteResult};
use ferrim_bench::xmpp::{XmppConfig, XmppTarget};
use ferrim_bench::{report, Target};

#[derive(Parser)]
#[command(
    name = "ferrim-bench",
    about = "Open-loop benchmark for ferrim (msync) and XMPP servers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Ferrim,
    Xmpp,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run workloads against one server (or the nodes of one cluster), print tables and
    /// write JSON.
    Run(Box<RunArgs>),
    /// Combine two JSON results into one markdown table with ratios, and PNG charts.
    Compare(CompareArgs),
}

#[derive(Parser)]
struct RunArgs {
    #[arg(long, value_enum)]
    target: Kind,
    /// Workloads, comma-separated: register,login,idle,chat,offline,kick or all.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    workloads: Vec<String>,
    /// ferrim base URL; for a cluster, each node's (repeat or comma-separate): REST goes to
    /// the first, connections round-robin over all.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8470")]
    url: Vec<String>,
    #[arg(long, default_value = "demo#demo")]
    app_key: String,
    #[arg(long, default_value = "bench-client")]
    client_id: String,
    #[arg(long, default_value = "bench-secret")]
    client_secret: String,
    /// The server's password-hash cost (reported with W0).
    #[arg(long, default_value = "unknown")]
    hash_cost: String,
    /// XMPP server address.
    #[arg(long, default_value = "127.0.0.1:5222")]
    xmpp_addr: SocketAddr,
    #[arg(long, default_value = "localhost")]
    xmpp_domain: String,
    /// User names are PREFIX + index.
    #[arg(long, default_value = "bu")]
    user_prefix: String,
    /// Server process id, for RSS and CPU readings; for a cluster on this machine, each
    /// node's (repeat or comma-separate): the readings are their sums.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Server version string to record.
    #[arg(long, default_value = "")]
    server_version: String,
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value_t = 2000)]
    users: usize,
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000,4000")]
    login_rates: Vec<f64>,
    #[arg(long, default_value_t = 3.0)]
    login_step_secs: f64,
    #[arg(long, default_value_t = 2000)]
    idle_conns: usize,
    #[arg(long, default_value_t = 10.0)]
    idle_secs: f64,
    #[arg(long, default_value_t = 5.0)]
    heartbeat_secs: f64,
    #[arg(long, default_value_t = 1000.0)]
    connect_rate: f64,
    #[arg(long, default_value_t = 8)]
    source_ips: usize,
    #[arg(long, value_delimiter = ',', default_value = "1000,2000,4000")]
    chat_rates: Vec<f64>,
    #[arg(long, default_value_t = 3.0)]
    chat_step_secs: f64,
    #[arg(long, default_value_t = 5.0)]
    drain_secs: f64,
    #[arg(long, default_value_t = 100)]
    offline_users: usize,
    #[arg(long, default_value_t = 20)]
    offline_msgs: usize,
    #[arg(long, default_value_t = 100.0)]
    offline_login_rate: f64,
    #[arg(long, default_value_t = 50)]
    kick_users: usize,
    #[arg(long, default_value_t = 4)]
    device_cap: u32,
    #[arg(long, default_value_t = 1000.0)]
    stop_p99_ms: f64,
    #[arg(long, default_value_t = 10.0)]
    op_timeout_secs: f64,
}

#[derive(Parser)]
struct CompareArgs {
    #[arg(long)]
    a: PathBuf,
    #[arg(long)]
    b: PathBuf,
    #[arg(long, default_value = "ferrim")]
    a_name: String,
    #[arg(long, default_value = "ejabberd")]
    b_name: String,
    /// Directory for the PNG charts.
    #[arg(long)]
    charts: Option<PathBuf>,
    /// Write the markdown (comparison table, charts, per-step tables) here.
    #[arg(long)]
    md: Option<PathBuf>,
    /// Chart path prefix used in the markdown image links.
    #[arg(long, default_value = "")]
    chart_link_prefix: String,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Run(args) => run(*args),
        Cmd::Compare(args) => compare(args),
    }
}

fn run(a: RunArgs) -> Result<()> {
    let cfg = SuiteConfig {
        workloads: a.workloads.clone(),
        users: a.users,
        login_rates: a.login_rates.clone(),
        login_step_secs: a.login_step_secs,
        idle_conns: a.idle_conns,
        idle_secs: a.idle_secs,
        heartbeat_secs: a.heartbeat_secs,
        connect_rate: a.connect_rate,
        source_ips: a.source_ips,
        chat_rates: a.chat_rates.clone(),
        chat_step_secs: a.chat_step_secs,
        drain_secs: a.drain_secs,
        offline_users: a.offline_users,
        offline_msgs: a.offline_msgs,
        offline_login_rate: a.offline_login_rate,
        kick_users: a.kick_users,
        device_cap: a.device_cap,
        stop_p99_ms: a.stop_p99_ms,
        op_timeout_secs: a.op_timeout_secs,
    };
    let target = match a.target {
        Kind::Ferrim => Target::Ferrim(Arc::new(FerrimTarget::new(FerrimConfig {
            base_urls: a.url.clone(),
            app_key: a.app_key.clone(),
            client_id: a.client_id.clone(),
            client_secret: a.client_secret.clone(),
            user_prefix: a.user_prefix.clone(),
            hash_cost: a.hash_cost.clone(),
        }))),
        Kind::Xmpp => Target::Xmpp(Arc::new(XmppTarget::new(XmppConfig {
            addr: a.xmpp_addr,
            domain: a.xmpp_domain.clone(),
            user_prefix: a.user_prefix.clone(),
        }))),
    };
    // The load generator is pinned to one core by the script; one worker thread per core
    // it may use keeps its own overhead predictable.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut result: SuiteResult =
        rt.block_on(async { run_suite(&target, &cfg, &a.server_pid).await })?;
    result.server_version = a.server_version.clone();
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("\nresults written to {}", path.display());
    }
    // Sessions' tasks may still be finishing their closes; do not wait for them.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

fn load(path: &PathBuf) -> Result<SuiteResult> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn compare(c: CompareArgs) -> Result<()> {
    let a = load(&c.a)?;
    let b = load(&c.b)?;
    let table = report::comparison_table(&a, &b, &c.a_name, &c.b_name);
    println!("{table}");
    let mut md = String::new();
    md.push_str(&table);
    md.push('\n');
    if let Some(dir) = &c.charts {
        for file in report::charts(&a, &b, &c.a_name, &c.b_name, dir)? {
            md.push_str(&format!("![{file}]({}{file})\n\n", c.chart_link_prefix));
        }
    }
    md.push_str(&report::detail_tables(&a, &c.a_name));
    md.push_str(&report::detail_tables(&b, &c.b_name));
    if let Some(path) = &c.md {
        std::fs::write(path, md)?;
    }
    Ok(())
}
