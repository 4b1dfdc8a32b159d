//! The kernel floor: what sending the engine's packets costs the kernel on
//! this machine, with no server logic at all.
//!
//! A receiver process (`cadence-bench floor-recv`, on the load tool's CPUs and
//! in its network namespace) binds 8 UDP sockets and drains them as the load
//! tool does (epoll, recvmmsg ×64, 1 ms coalescing). A sender process
//! (`cadence-bench floor-send`, on the engine's CPUs) sends the packet sizes
//! of the scenario's media file, in schedule order, at the scenario's packet
//! rate in 1 ms batches, with header + payload iovecs, round-robin over the
//! receiver's sockets — once with io_uring SENDMSG (the engine's ring flags)
//! and once with sendmmsg ×64. Its own CPU time over the packets sent is the
//! floor in µs per packet.

use std::io::{BufRead, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use io_uring::{opcode, types};
use serde::{Deserialize, Serialize};

/// Datagrams per recvmmsg / sendmmsg call.
const BATCH: usize = 64;
/// Receiver sockets (the load tool's default is 8 port pairs per worker).
pub const RECEIVER_SOCKETS: usize = 8;

/// Send method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// io_uring IORING_OP_SENDMSG, one SQE per packet, one submit per tick.
    Uring,
    /// sendmmsg(2), 64 datagrams per call.
    Sendmmsg,
}

/// What the sender measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SendReport {
    /// `uring` or `sendmmsg`.
    pub method: String,
    /// Packets handed to the kernel successfully.
    pub packets: u64,
    /// Failed sends.
    pub errors: u64,
    /// Bytes (UDP payload = RTP header + payload).
    pub bytes: u64,
    /// Sending time, s.
    pub seconds: f64,
    /// Packets per second requested.
    pub rate_requested: f64,
    /// Packets per second achieved.
    pub rate_achieved: f64,
    /// User CPU of the sender process while sending, s.
    pub user_s: f64,
    /// System CPU of the sender process while sending, s.
    pub sys_s: f64,
    /// (user + system) / packets, µs.
    pub us_per_packet: f64,
    /// Busy time of the sender's CPU set while sending, all tasks
    /// (ksoftirqd included), s.
    pub cpuset_busy_s: f64,
    /// `cpuset_busy_s` / packets, µs.
    pub cpuset_us_per_packet: f64,
}

/// Busy seconds of the CPUs this process may run on (/proc/stat).
fn own_cpuset_busy() -> f64 {
    let cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let list = cpus
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    crate::procstat::sample(
        std::process::id(),
        0.0,
        &crate::procstat::parse_cpus(&list),
        &[],
    )
    .map(|s| s.server_cpus_busy_s)
    .unwrap_or(0.0)
}

/// What the receiver counted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RecvReport {
    /// Datagrams received.
    pub received: u64,
    /// Bytes received.
    pub bytes: u64,
    /// UDP RcvbufErrors of the receiver's network namespace during the run.
    pub rcvbuf_errors: u64,
}

/// The size of every packet of `media`, RTP header included, in send order
/// across tracks, and the file's packets per second.
pub fn packet_sizes(media: &Path) -> Result<(Vec<u32>, f64)> {
    let file =
        cadence_hinting::open(media).with_context(|| format!("compile {}", media.display()))?;
    let mut all: Vec<(u64, u32)> = file
        .tracks
        .iter()
        .flat_map(|t| {
            t.packets
                .iter()
                .map(|p| (p.send_time_us, p.payload_len + 12))
        })
        .collect();
    all.sort_by_key(|(t, _)| *t);
    let seconds = file.duration_us as f64 / 1e6;
    if all.is_empty() || seconds <= 0.0 {
        bail!("{}: no packets", media.display());
    }
    let rate = all.len() as f64 / seconds;
    Ok((all.into_iter().map(|(_, s)| s).collect(), rate))
}

fn udp_errors() -> u64 {
    // /proc/net/snmp: a "Udp:" header line, then a "Udp:" values line.
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(h), Some(v)) = (lines.next(), lines.next()) else {
        return 0;
    };
    h.split_whitespace()
        .zip(v.split_whitespace())
        .find(|(k, _)| *k == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn set_buf(fd: i32, force: i32, plain: i32, bytes: usize) {
    let v = bytes.min(i32::MAX as usize) as libc::c_int;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt with a c_int value on a socket we own.
    unsafe {
        if libc::setsockopt(fd, libc::SOL_SOCKET, force, &v as *const _ as *const _, len) != 0 {
            libc::setsockopt(fd, libc::SOL_SOCKET, plain, &v as *const _ as *const _, len);
        }
    }
}

/// `cadence-bench floor-recv`: binds the sockets on `ip`, prints
/// `READY port,port,...`, drains until stdin closes, then prints its
/// [`RecvReport`] as one JSON line.
pub fn receive(ip: std::net::IpAddr) -> Result<()> {
    let mut sockets = Vec::new();
    for _ in 0..RECEIVER_SOCKETS {
        let s = UdpSocket::bind(SocketAddr::new(ip, 0)).context("bind receiver socket")?;
        s.set_nonblocking(true)?;
        set_buf(
            s.as_raw_fd(),
            libc::SO_RCVBUFFORCE,
            libc::SO_RCVBUF,
            16 << 20,
        );
        sockets.push(s);
    }
    // SAFETY: epoll_create1 returns a new descriptor or -1.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        bail!("epoll_create1: {}", std::io::Error::last_os_error());
    }
    for (i, s) in sockets.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: registering our own socket with our epoll instance.
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) };
    }
    let ports: Vec<String> = sockets
        .iter()
        .map(|s| {
            s.local_addr()
                .map(|a| a.port().to_string())
                .unwrap_or_default()
        })
        .collect();
    println!("READY {}", ports.join(","));
    std::io::stdout().flush()?;

    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    std::thread::spawn(move || {
        let mut sink = String::new();
        while std::io::stdin()
            .lock()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
        st.store(true, Ordering::Relaxed);
    });

    let errors_before = udp_errors();
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: zeroed mmsghdr is valid; pointers are set below.
    let mut hdrs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (h, iov) in hdrs.iter_mut().zip(iovs.iter_mut()) {
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; RECEIVER_SOCKETS];
    let mut report = RecvReport::default();
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: events has RECEIVER_SOCKETS entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 100) };
        for e in events.iter().take(n.max(0) as usize) {
            let Some(s) = sockets.get(e.u64 as usize) else {
                continue;
            };
            loop {
                // SAFETY: hdrs describe BATCH valid buffers.
                let got = unsafe {
                    libc::recvmmsg(
                        s.as_raw_fd(),
                        hdrs.as_mut_ptr(),
                        BATCH as u32,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                    )
                };
                if got <= 0 {
                    break;
                }
                report.received += got as u64;
                report.bytes += hdrs[..got as usize]
                    .iter()
                    .map(|h| h.msg_len as u64)
                    .sum::<u64>();
                if (got as usize) < BATCH {
                    break;
                }
            }
        }
        // The load tool's coalescing: let packets gather for 1 ms.
        std::thread::sleep(Duration::from_millis(1));
    }
    report.rcvbuf_errors = udp_errors().saturating_sub(errors_before);
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn cpu_now() -> (f64, f64) {
    // SAFETY: zeroed rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer; RUSAGE_SELF covers io_uring worker threads too.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

/// A preallocated datagram: msghdr, header + payload iovecs, destination.
#[repr(C)]
struct Slot {
    msg: libc::msghdr,
    iov: [libc::iovec; 2],
    addr: libc::sockaddr_in,
}

fn sockaddr(a: SocketAddr) -> Result<libc::sockaddr_in> {
    let SocketAddr::V4(v4) = a else {
        bail!("floor targets must be IPv4: {a}");
    };
    Ok(libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(v4.ip().octets()),
        },
        sin_zero: [0; 8],
    })
}

/// `cadence-bench floor-send`: sends `media`'s packet sizes at `rate`
/// packets/s for `seconds` to `targets` with `method`, and returns what it
/// cost.
pub fn send(
    method: Method,
    media: &Path,
    rate: f64,
    seconds: f64,
    targets: &[SocketAddr],
) -> Result<SendReport> {
    if targets.is_empty() {
        bail!("no floor targets");
    }
    let (sizes, _) = packet_sizes(media)?;
    let addrs: Vec<libc::sockaddr_in> = targets
        .iter()
        .map(|a| sockaddr(*a))
        .collect::<Result<_>>()?;
    let socket = UdpSocket::bind("0.0.0.0:0").context("bind sender")?;
    set_buf(
        socket.as_raw_fd(),
        libc::SO_SNDBUFFORCE,
        libc::SO_SNDBUF,
        4 << 20,
    );
    let header = [0x80u8, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    let payload = vec![0x5au8; 2048];
    let nslots = 8192usize;
    // SAFETY: zeroed msghdr/iovec/sockaddr are valid; pointers set per use.
    let mut slots: Vec<Slot> = (0..nslots).map(|_| unsafe { std::mem::zeroed() }).collect();
    let mut free: Vec<u32> = (0..nslots as u32).rev().collect();
    let fill = |slot: &mut Slot, i: u64| {
        let size = sizes[(i % sizes.len() as u64) as usize] as usize;
        slot.addr = addrs[(i % addrs.len() as u64) as usize];
        slot.iov[0] = libc::iovec {
            iov_base: header.as_ptr() as *mut libc::c_void,
            iov_len: 12,
        };
        slot.iov[1] = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: size.saturating_sub(12).min(payload.len()),
        };
        slot.msg.msg_name = &mut slot.addr as *mut _ as *mut libc::c_void;
        slot.msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        slot.msg.msg_iov = slot.iov.as_mut_ptr();
        slot.msg.msg_iovlen = 2;
        size as u64
    };

    let mut ring = match method {
        Method::Uring => {
            Some(cadence_engine::shard::new_ring(4096).map_err(|e| anyhow!("io_uring: {e}"))?)
        }
        Method::Sendmmsg => None,
    };
    let mut report = SendReport {
        method: format!("{method:?}").to_lowercase(),
        rate_requested: rate,
        ..SendReport::default()
    };
    let per_tick = rate / 1000.0;
    let mut owed = 0.0f64;
    let mut i = 0u64;
    // SAFETY: zeroed mmsghdr is valid.
    let mut mm: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    let busy0 = own_cpuset_busy();
    let (u0, s0) = cpu_now();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut next_tick = start;
    let fd = types::Fd(socket.as_raw_fd());
    let mut done: Vec<(u32, i32)> = Vec::with_capacity(nslots);
    while Instant::now() < end {
        let now = Instant::now();
        if now >= next_tick {
            owed += per_tick;
            let n = owed as u64;
            owed -= n as f64;
            next_tick += Duration::from_millis(1);
            match ring.as_mut() {
                Some(ring) => {
                    for _ in 0..n {
                        let Some(idx) = free.pop() else {
                            report.errors += 1;
                            continue;
                        };
                        let slot = &mut slots[idx as usize];
                        report.bytes += fill(slot, i);
                        i += 1;
                        let e = opcode::SendMsg::new(fd, &slot.msg as *const _)
                            .build()
                            .user_data(u64::from(idx));
                        // SAFETY: the slot stays untouched until its completion.
                        while unsafe { ring.submission().push(&e) }.is_err() {
                            ring.submit()?;
                        }
                    }
                    ring.submit()?;
                }
                None => {
                    let mut left = n;
                    while left > 0 {
                        let k = left.min(BATCH as u64) as usize;
                        for (j, h) in mm.iter_mut().take(k).enumerate() {
                            let slot = &mut slots[j];
                            report.bytes += fill(slot, i);
                            i += 1;
                            h.msg_hdr = slot.msg;
                            h.msg_len = 0;
                        }
                        // SAFETY: mm[..k] point at slots that live across the call.
                        let r = unsafe {
                            libc::sendmmsg(socket.as_raw_fd(), mm.as_mut_ptr(), k as u32, 0)
                        };
                        if r < 0 {
                            report.errors += k as u64;
                        } else {
                            report.packets += r as u64;
                            report.errors += (k as u64).saturating_sub(r as u64);
                        }
                        left -= k as u64;
                    }
                }
            }
        }
        match ring.as_mut() {
            Some(ring) => {
                done.clear();
                for cqe in ring.completion() {
                    done.push((cqe.user_data() as u32, cqe.result()));
                }
                for &(idx, res) in &done {
                    free.push(idx);
                    if res < 0 {
                        report.errors += 1;
                    } else {
                        report.packets += 1;
                    }
                }
                let wait = next_tick.saturating_duration_since(Instant::now());
                let ts = types::Timespec::new().nsec(wait.as_nanos().min(999_999_999) as u32);
                let args = types::SubmitArgs::new().timespec(&ts);
                match ring.submitter().submit_with_args(1, &args) {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                        ) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            None => std::thread::sleep(next_tick.saturating_duration_since(Instant::now())),
        }
    }
    if let Some(ring) = ring.as_mut() {
        // Collect the last completions.
        let deadline = Instant::now() + Duration::from_millis(200);
        while free.len() < nslots && Instant::now() < deadline {
            let _ = ring.submit_and_wait(1);
            for cqe in ring.completion() {
                free.push(cqe.user_data() as u32);
                if cqe.result() < 0 {
                    report.errors += 1;
                } else {
                    report.packets += 1;
                }
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (u1, s1) = cpu_now();
    report.cpuset_busy_s = own_cpuset_busy() - busy0;
    report.seconds = elapsed;
    report.user_s = u1 - u0;
    report.sys_s = s1 - s0;
    report.rate_achieved = report.packets as f64 / elapsed.max(1e-9);
    report.us_per_packet = if report.packets > 0 {
        (report.user_s + report.sys_s) * 1e6 / report.packets as f64
    } else {
        0.0
    };
    report.cpuset_us_per_packet = if report.packets > 0 {
        report.cpuset_busy_s * 1e6 / report.packets as f64
    } else {
        0.0
    };
    Ok(report)
}
