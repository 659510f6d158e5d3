//! What a process used, from /proc: its memory and its CPU time.

/// The kernel's clock ticks per second in /proc/<pid>/stat (USER_HZ, 100
/// on every Linux architecture this runs on).
const USER_HZ: f64 = 100.0;

/// The process's resident set size, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in kB")
}

/// The CPU time (user and system) process `pid` used so far, with that of
/// its children that exited (PostgreSQL's backends).
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After the command's closing parenthesis: state is field 3; utime,
    // stime, cutime and cstime are 14 to 17.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15) + ticks(16) + ticks(17)) / USER_HZ
}

/// The CPU time the processes whose command line contains `program` used
/// so far: a shared server of the test environment, all its processes.
pub fn server_cpu_seconds(program: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(program))
        })
        .map(cpu_seconds)
        .sum()
}
