//! Server resource readings from `/proc/<pid>`: resident memory and CPU time.

use std::time::Instant;

/// `VmRSS` of a process in KiB (`None` if unreadable, e.g. no pid given).
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// User + system CPU time of a process (all threads) in clock ticks.
pub fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // The command name is in parentheses and may contain spaces: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 (index 0 here); utime 14 and stime 15 are 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; Linux reports 100 everywhere we run).
pub const TICKS_PER_SEC: f64 = 100.0;

/// Measures a process's CPU use between `start` and [`CpuMeter::percent`].
pub struct CpuMeter {
    pid: Option<u32>,
    ticks: Option<u64>,
    at: Instant,
}

impl CpuMeter {
    /// Starts measuring.
    pub fn start(pid: Option<u32>) -> Self {
        CpuMeter {
            pid,
            ticks: cpu_ticks(pid),
            at: Instant::now(),
        }
    }

    /// CPU used since the start as a percentage of one core.
    pub fn percent(&self) -> Option<f64> {
        let now = cpu_ticks(self.pid)?;
        let secs = self.at.elapsed().as_secs_f64();
        let used = now.checked_sub(self.ticks?)? as f64 / TICKS_PER_SEC;
        (secs > 0.0).then(|| 100.0 * used / secs)
    }

    /// CPU seconds used since the start.
    pub fn seconds(&self) -> Option<f64> {
        let now = cpu_ticks(self.pid)?;
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
        let me = Some(std::process::id());
        assert!(rss_kib(me).unwrap() > 0);
        assert!(cpu_ticks(me).is_some());
        assert_eq!(rss_kib(None), None);
    }
}
