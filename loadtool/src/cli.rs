//! Command line (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::churn::{parse_range, Churn};
use crate::plan::TransportMode;
use crate::run::RunConfig;

/// Plays N RTSP sessions at once and measures what each one receives.
///
/// Each client does what a player does: OPTIONS, DESCRIBE, SETUP of every
/// track, PLAY, RTCP receiver reports and keep-alives while playing, TEARDOWN
/// at the end. Clients start at --ramp per second; once every client plays
/// (or failed), the measurement window of --duration seconds begins; then all
/// clients stop counting and tear down.
///
/// Exit status: 0 when every client played without failure and loss is at
/// most --max-loss; 1 otherwise; 2 when the run could not start.
#[derive(Debug, Parser)]
#[command(name = "cadence-loadtool", version)]
pub struct Cli {
    /// Number of concurrent RTSP sessions.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub clients: u64,

    /// Sessions started per second (0: all at once).
    #[arg(long, value_name = "PER_S", default_value_t = 500.0)]
    pub ramp: f64,

    /// Measurement window in seconds, counted from when every client plays.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub duration: f64,

    /// Media transport: udp, tcp (interleaved), or mixed (alternating).
    #[arg(long, value_enum, default_value_t = TransportMode::Udp)]
    pub transport: TransportMode,

    /// CPUs to pin worker threads to, one worker per CPU (e.g. `0-3,6`).
    #[arg(long, value_name = "LIST", value_parser = parse_cpu_list)]
    pub cpus: Option<CpuList>,

    /// Worker threads when --cpus is not given [default: CPUs available].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Write the JSON report to FILE (schema in loadtool/README.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Highest packet loss that passes, in percent.
    #[arg(long, value_name = "PCT", default_value_t = 0.1)]
    pub max_loss: f64,

    /// Connect and request timeout in seconds.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub timeout: f64,

    /// Shared UDP RTP/RTCP port pairs per worker thread.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub udp_pairs: u64,

    /// Receive buffer per UDP socket in bytes (SO_RCVBUFFORCE, else
    /// SO_RCVBUF capped by net.core.rmem_max).
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub rcvbuf: usize,

    /// Minimum µs between event-loop passes while all clients play (lets
    /// recvmmsg read many packets per call; UDP timing uses kernel
    /// timestamps and is not affected). 0 reacts to every packet at once.
    #[arg(long, value_name = "US", default_value_t = 1000)]
    pub coalesce_us: u64,

    /// Mean interval between RTCP receiver reports, seconds.
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub rr_interval: f64,

    /// Start each session with DESCRIBE instead of OPTIONS (RFC 2326 does
    /// not require OPTIONS). A session is then DESCRIBE, SETUP per track,
    /// PLAY, the definition of the setup-rate target; keep-alives are OPTIONS.
    #[arg(long)]
    pub no_options: bool,

    /// Also measure the CPU time of this process (the server) and report it
    /// per packet received.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Churn: give each session a random play time, uniform between MIN
    /// and MAX seconds (e.g. `2-20`), and replace each session that ends at
    /// once, so that --clients sessions stay up.
    #[arg(long, value_name = "MIN-MAX")]
    pub churn: Option<String>,

    /// With --churn: percent of ending sessions that close their RTSP
    /// connection without TEARDOWN, as players that crash or are killed do.
    #[arg(long, value_name = "PCT", default_value_t = 0.0, requires = "churn")]
    pub churn_no_teardown: f64,

    /// With --churn: seed of the lifetime draws, to repeat a run
    /// [default: random, reported in the JSON `churn.seed`].
    #[arg(long, value_name = "N", requires = "churn")]
    pub seed: Option<u64>,

    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,

    /// rtsp:// URLs, assigned to clients round-robin.
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
}

/// CPU numbers from `--cpus`, sorted, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// Parses a CPU list such as `0-3,6`.
pub fn parse_cpu_list(s: &str) -> Result<CpuList, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list element {part:?}");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if a > b || b - a > 4096 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err("empty CPU list".into());
    }
    out.sort_unstable();
    out.dedup();
    Ok(CpuList(out))
}

fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    if (0.0..1e9).contains(&v) {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("--{name} must be a non-negative number of seconds"))
    }
}

impl Cli {
    /// Validates the arguments into a run configuration.
    pub fn to_config(&self) -> Result<RunConfig, String> {
        if !(self.ramp.is_finite() && self.ramp >= 0.0) {
            return Err("--ramp must be a non-negative number".into());
        }
        if !(self.max_loss.is_finite() && self.max_loss >= 0.0) {
            return Err("--max-loss must be a non-negative percentage".into());
        }
        let timeout = seconds("timeout", self.timeout)?;
        if timeout.is_zero() {
            return Err("--timeout must be positive".into());
        }
        let rr_interval = seconds("rr-interval", self.rr_interval)?;
        if rr_interval < Duration::from_millis(100) {
            return Err("--rr-interval must be at least 0.1 s".into());
        }
        if !(0.0..=100.0).contains(&self.churn_no_teardown) {
            return Err("--churn-no-teardown must be a percentage from 0 to 100".into());
        }
        let churn = match &self.churn {
            Some(range) => {
                let (min, max) = parse_range(range)?;
                Some(Churn {
                    min,
                    max,
                    no_teardown_pct: self.churn_no_teardown,
                    seed: self.seed.unwrap_or_else(rand::random),
                })
            }
            None => None,
        };
        Ok(RunConfig {
            clients: self.clients as usize,
            ramp_per_s: self.ramp,
            duration: seconds("duration", self.duration)?,
            transport: self.transport,
            cpus: self.cpus.as_ref().map(|c| c.0.clone()),
            threads: self.threads.filter(|t| *t > 0),
            timeout,
            udp_pairs: self.udp_pairs as usize,
            rcvbuf: self.rcvbuf,
            coalesce: Duration::from_micros(self.coalesce_us.min(100_000)),
            rr_interval,
            no_options: self.no_options,
            max_loss_pct: self.max_loss,
            server_pid: self.server_pid,
            churn,
            quiet: self.quiet,
            urls: self.urls.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6").unwrap().0, vec![0, 1, 2, 3, 6]);
        assert_eq!(parse_cpu_list("1,1,0").unwrap().0, vec![0, 1]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn churn_flags() {
        let cli = Cli::try_parse_from([
            "cadence-loadtool",
            "--churn",
            "2-20",
            "--churn-no-teardown",
            "10",
            "--seed",
            "7",
            "rtsp://h/a",
        ])
        .unwrap();
        let churn = cli.to_config().unwrap().churn.unwrap();
        assert_eq!(churn.min, Duration::from_secs(2));
        assert_eq!(churn.max, Duration::from_secs(20));
        assert_eq!(churn.no_teardown_pct, 10.0);
        assert_eq!(churn.seed, 7);
        // The churn options need --churn; bad values are refused.
        assert!(Cli::try_parse_from(["cadence-loadtool", "--seed", "7", "rtsp://h/a"]).is_err());
        for args in [["--churn", "20-2"], ["--churn-no-teardown", "101"]] {
            let mut argv = vec!["cadence-loadtool", "--churn", "1-2"];
            argv.extend(args);
            argv.push("rtsp://h/a");
            let parsed = Cli::try_parse_from(argv);
            assert!(parsed.map_or(true, |c| c.to_config().is_err()), "{args:?}");
        }
    }

    #[test]
    fn parses_the_documented_usage() {
        let cli = Cli::try_parse_from([
            "cadence-loadtool",
            "--clients",
            "200",
            "--ramp",
            "100",
            "--duration",
            "10",
            "--transport",
            "mixed",
            "--cpus",
            "0",
            "--json",
            "out.json",
            "--max-loss",
            "0.5",
            "rtsp://127.0.0.1:8554/a",
            "rtsp://127.0.0.1:8554/b",
        ])
        .unwrap();
        let cfg = cli.to_config().unwrap();
        assert_eq!(cfg.clients, 200);
        assert_eq!(cfg.transport, TransportMode::Mixed);
        assert_eq!(cfg.cpus, Some(vec![0]));
        assert_eq!(cfg.duration, Duration::from_secs(10));
        assert_eq!(cfg.urls.len(), 2);
        assert_eq!(cfg.churn, None);
        assert!(Cli::try_parse_from(["cadence-loadtool"]).is_err());
        assert!(Cli::try_parse_from(["cadence-loadtool", "--clients", "0", "rtsp://h/"]).is_err());
    }
}
