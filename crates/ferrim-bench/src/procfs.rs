//! Server resource readings from `/proc/<pid>`: resident memory and CPU time. A server may
//! be several processes (the nodes of a cluster on one machine): readings are their sums.

use std::time::Instant;

/// `VmRSS` of one process in KiB (`None` if unreadable).
fn rss_kib_one(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// User + system CPU time of one process (all threads) in clock ticks.
fn cpu_ticks_one(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 (index 0 here); utime 14 and stime 15 are 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Sum of `read` over `pids`; `None` if there are none or any is unreadable (a partial sum
/// would look like a real figure).
fn sum(pids: &[u32], read: fn(u32) -> Option<u64>) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| read(p)).sum()
}

/// `VmRSS` of the processes in KiB, summed (`None` if unreadable, e.g. no pid given).
pub fn rss_kib(pids: &[u32]) -> Option<u64> {
    sum(pids, rss_kib_one)
}

/// User + system CPU time of the processes (all threads) in clock ticks, summed.
pub fn cpu_ticks(pids: &[u32]) -> Option<u64> {
    sum(pids, cpu_ticks_one)
}

/// Clock ticks per second (`getconf CLK_TCK`; Linux reports 100 everywhere we run).
pub const TICKS_PER_SEC: f64 = 100.0;

/// Measures the processes' CPU use between `start` and [`CpuMeter::percent`].
pub struct CpuMeter {
    pids: Vec<u32>,
    ticks: Option<u64>,
    at: Instant,
}

impl CpuMeter {
    /// Starts measuring.
    pub fn start(pids: &[u32]) -> Self {
        CpuMeter {
            pids: pids.to_vec(),
            ticks: cpu_ticks(pids),
            at: Instant::now(),
        }
    }

    /// CPU used since the start as a percentage of one core (summed over the processes).
    pub fn percent(&self) -> Option<f64> {
        let now = cpu_ticks(&self.pids)?;
        let secs = self.at.elapsed().as_secs_f64();
        let used = now.checked_sub(self.ticks?)? as f64 / TICKS_PER_SEC;
        (secs > 0.0).then(|| 100.0 * used / secs)
    }

    /// CPU seconds used since the start.
    pub fn seconds(&self) -> Option<f64> {
        let now = cpu_ticks(&self.pids)?;
        Some(now.checked_sub(self.ticks?)? as f64 / TICKS_PER_SEC)
    }
}

/// Raises this process's open-file limit to its hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let one = rss_kib(&[me]).unwrap();
        assert!(one > 0);
        assert!(cpu_ticks(&[me]).is_some());
        assert_eq!(rss_kib(&[]), None);
        // Several pids are summed (the same one twice: about twice the figure).
        let two = rss_kib(&[me, me]).unwrap();
        assert!(two >= one && two <= 3 * one, "{one} {two}");
        // One unreadable pid spoils the sum rather than understating it.
        assert_eq!(rss_kib(&[me, u32::MAX]), None);
    }
}
