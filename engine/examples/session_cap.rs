//! A Cadence server with a custom authorizer: at most `--max-per-client`
//! concurrent sessions per client IP address, across all shards. A SETUP
//! that would open one more gets 453 Not Enough Bandwidth.
//!
//! ```sh
//! cargo run --release -p cadence-engine --example session_cap -- \
//!     --max-per-client 2 --media media
//! ```
//!
//! It shows the three things an extension usually needs:
//! - an authorizer ([`Extension::authorize`]) that refuses a request;
//! - post-process ([`Extension::post_process`]) and session events
//!   ([`Extension::session_event`]) to keep its own state right;
//! - state shared by every shard's instance. Hooks run on shard threads
//!   and must never block, so the shared map is only locked for the
//!   length of one map update (never across I/O), and only on SETUP and
//!   session close: never per packet.

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use cadence_engine::config::{Config, ServeArgs};
use cadence_engine::pipeline::{
    Exchange, Extension, Identity, RequestInfo, Route, SessionEvent, Verdict,
};
use cadence_engine::server::Server;
use cadence_engine::session::SessionId;
use clap::Parser;
use rtsp_types::StatusCode;

/// Sessions per client address, shared by every shard's instance.
#[derive(Default)]
struct Counts {
    by_ip: HashMap<IpAddr, u32>,
}

/// The per-client session cap. Each shard gets a clone; they share `counts`.
#[derive(Clone)]
struct SessionCap {
    max: u32,
    counts: Arc<Mutex<Counts>>,
    /// Slots this shard's instance reserved for SETUPs still being handled,
    /// by client address and port and CSeq (one request).
    reserved: Vec<(std::net::SocketAddr, String)>,
    /// Which address each of this shard's sessions counts against.
    sessions: HashMap<SessionId, IpAddr>,
}

impl SessionCap {
    fn release(&self, ip: IpAddr) {
        if let Ok(mut c) = self.counts.lock() {
            if let Some(n) = c.by_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.by_ip.remove(&ip);
                }
            }
        }
    }
}

impl Extension for SessionCap {
    fn name(&self) -> &str {
        "session-cap"
    }

    /// Reserves a slot for a SETUP that would open a session, or refuses it.
    fn authorize(&mut self, req: &RequestInfo<'_>, _route: &Route, _id: &Identity) -> Verdict {
        if !req.creates_session() {
            return Verdict::Allow;
        }
        let ip = req.peer.ip();
        let Ok(mut c) = self.counts.lock() else {
            return Verdict::Allow;
        };
        let n = c.by_ip.entry(ip).or_insert(0);
        if *n >= self.max {
            return Verdict::Deny {
                status: StatusCode::NotEnoughBandwidth,
                reason: format!("{ip} already has {n} sessions (limit {})", self.max),
            };
        }
        *n += 1;
        self.reserved
            .push((req.peer, req.cseq().unwrap_or("").to_string()));
        Verdict::Allow
    }

    /// A reserved SETUP that did not open a session (refused by a later
    /// stage, or by the handler) gives its slot back.
    fn post_process(&mut self, req: &RequestInfo<'_>, exchange: &Exchange<'_>) {
        let key = (req.peer, req.cseq().unwrap_or("").to_string());
        let Some(i) = self.reserved.iter().position(|r| *r == key) else {
            return;
        };
        self.reserved.swap_remove(i);
        let opened =
            exchange.answered_by == "handle" && exchange.response.status() == StatusCode::Ok;
        if !opened {
            self.release(req.peer.ip());
        }
    }

    /// Opened sessions own their slot until they close.
    fn session_event(&mut self, event: &SessionEvent<'_>) {
        match event {
            SessionEvent::Opened(s) => {
                self.sessions.insert(s.id(), s.meta().peer.ip());
            }
            SessionEvent::Closed(summary) => {
                if let Some(ip) = self.sessions.remove(&summary.id) {
                    self.release(ip);
                }
            }
            _ => {}
        }
    }
}

/// `session_cap`: a Cadence server capping concurrent sessions per client.
#[derive(Debug, Parser)]
struct Cli {
    /// Most concurrent sessions per client IP address.
    #[arg(long, default_value_t = 4)]
    max_per_client: u32,
    /// The usual server flags.
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cpus = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(1);
    let config = match Config::resolve(&cli.serve, cpus) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("session_cap: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .init();
    let cap = SessionCap {
        max: cli.max_per_client,
        counts: Arc::default(),
        reserved: Vec::new(),
        sessions: HashMap::new(),
    };
    match Server::builder(config).extension(cap).run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("session_cap: {e}");
            ExitCode::FAILURE
        }
    }
}
