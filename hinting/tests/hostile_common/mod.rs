//! Shared helpers of the hostile-file tests: an MP4 byte builder that writes
//! the few boxes the reader needs (so that a test can declare any count it
//! likes), and a harness that runs one test in a child process with an
//! address-space limit and a time limit and reports its peak resident memory.

#![allow(dead_code)]

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memmap2::Mmap;

// ---------------------------------------------------------------- boxes

/// A box: 32-bit size, type, body (ISO/IEC 14496-12 §4.2).
pub fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(body.len() + 8).expect("test boxes stay under 4 GiB");
    let mut v = size.to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

/// Big-endian u32 fields.
pub fn be32s(fields: &[u32]) -> Vec<u8> {
    fields.iter().flat_map(|f| f.to_be_bytes()).collect()
}

/// A full box (version 0, flags 0) whose body is `fields`.
pub fn full(kind: &[u8; 4], fields: &[u32]) -> Vec<u8> {
    bx(kind, &be32s(&[&[0], fields].concat()))
}

/// An 'avc1' sample entry (86 fixed bytes) with an 'avcC' of 4-byte NAL
/// length prefixes and no parameter sets.
pub fn avc1_entry() -> Vec<u8> {
    let mut body = vec![0u8; 6];
    body.extend_from_slice(&1u16.to_be_bytes()); // data_reference_index
    body.extend_from_slice(&[0; 16]);
    body.extend_from_slice(&320u16.to_be_bytes());
    body.extend_from_slice(&240u16.to_be_bytes());
    body.extend_from_slice(&be32s(&[0x0048_0000, 0x0048_0000, 0]));
    body.extend_from_slice(&1u16.to_be_bytes()); // frame_count
    body.extend_from_slice(&[0; 32]);
    body.extend_from_slice(&[0, 0x18, 0xff, 0xff]);
    body.extend_from_slice(&bx(b"avcC", &[1, 0x42, 0xc0, 0x1e, 0xff, 0xe0, 0x00]));
    bx(b"avc1", &body)
}

/// One H.264 sample: a 4-byte length prefix and a 4-byte IDR slice NAL unit.
pub const H264_SAMPLE: [u8; 8] = [0, 0, 0, 4, 0x65, 0x88, 0x84, 0x00];

/// An 'rtp ' hint sample entry: hint track version 1, 1450-byte packets,
/// 'tims' 90000 (ISO/IEC 14496-12 §9.1.2.1).
pub fn rtp_entry() -> Vec<u8> {
    let mut body = vec![0u8; 6];
    body.extend_from_slice(&[0, 1, 0, 1, 0, 1]); // dref index, versions
    body.extend_from_slice(&1450u32.to_be_bytes());
    body.extend_from_slice(&bx(b"tims", &90_000u32.to_be_bytes()));
    bx(b"rtp ", &body)
}

/// Packet entry flag R: a repeat packet.
pub const REPEAT: u16 = 1;

/// A hint sample of `packets` packet entries without constructors, each
/// with `flags`, payload type 96 (ISO/IEC 14496-12 §9.1.3).
pub fn hint_sample(packets: u16, flags: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + 12 * usize::from(packets));
    v.extend_from_slice(&packets.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    for k in 0..packets {
        v.extend_from_slice(&0i32.to_be_bytes()); // relative time
        v.extend_from_slice(&0x0060u16.to_be_bytes()); // PT 96
        v.extend_from_slice(&k.to_be_bytes()); // sequence
        v.extend_from_slice(&flags.to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes()); // constructors
    }
    v
}

/// Sample sizes as 'stsz' declares them.
#[derive(Debug, Clone)]
pub enum Sizes {
    /// One size for `count` samples.
    Constant { size: u32, count: u32 },
    /// One size per sample.
    Listed(Vec<u32>),
}

impl Sizes {
    fn count(&self) -> u32 {
        match self {
            Sizes::Constant { count, .. } => *count,
            Sizes::Listed(v) => u32::try_from(v.len()).expect("count"),
        }
    }
}

/// One track to write.
#[derive(Debug, Clone)]
pub struct TrackSpec {
    /// 'tkhd' track_ID.
    pub track_id: u32,
    /// 'hdlr' handler: `vide`, `hint`.
    pub handler: [u8; 4],
    /// 'mdhd' timescale.
    pub timescale: u32,
    /// The one 'stsd' entry, a complete box.
    pub entry: Vec<u8>,
    /// 'stsz'.
    pub sizes: Sizes,
    /// 'stco' offsets, relative to the start of the 'mdat' payload.
    pub chunks: Vec<u32>,
    /// Samples per chunk (one 'stsc' entry).
    pub samples_per_chunk: u32,
    /// 'stts' delta of every sample.
    pub delta: u32,
    /// 'tref'/'hint' track IDs.
    pub hint_refs: Vec<u32>,
}

impl TrackSpec {
    /// An H.264 video track at 90 kHz, 30 frames/s.
    pub fn video(track_id: u32, sizes: Sizes, chunks: Vec<u32>, samples_per_chunk: u32) -> Self {
        TrackSpec {
            track_id,
            handler: *b"vide",
            timescale: 90_000,
            entry: avc1_entry(),
            sizes,
            chunks,
            samples_per_chunk,
            delta: 3000,
            hint_refs: Vec::new(),
        }
    }

    /// An RTP hint track at 90 kHz, 30 hint samples/s.
    pub fn hint(track_id: u32, sizes: Sizes, chunks: Vec<u32>, samples_per_chunk: u32) -> Self {
        TrackSpec {
            handler: *b"hint",
            entry: rtp_entry(),
            ..Self::video(track_id, sizes, chunks, samples_per_chunk)
        }
    }

    fn trak(&self, mdat_payload_at: u32) -> Vec<u8> {
        let count = self.sizes.count();
        let duration = u64::from(count) * u64::from(self.delta);
        let duration32 = u32::try_from(duration).unwrap_or(u32::MAX);
        let tkhd = bx(
            b"tkhd",
            &[
                be32s(&[3, 0, 0, self.track_id, 0, duration32, 0, 0, 0, 0]),
                be32s(&[0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000]),
                be32s(&[320 << 16, 240 << 16]),
            ]
            .concat(),
        );
        let mdhd = full(b"mdhd", &[0, 0, self.timescale, duration32, 0x55c4_0000]);
        let hdlr = bx(
            b"hdlr",
            &[
                be32s(&[0, 0, u32::from_be_bytes(self.handler), 0, 0, 0]),
                vec![0],
            ]
            .concat(),
        );
        let stsz = match &self.sizes {
            Sizes::Constant { size, count } => full(b"stsz", &[*size, *count]),
            Sizes::Listed(v) => full(b"stsz", &[&[0, count], v.as_slice()].concat()),
        };
        let offsets: Vec<u32> = self
            .chunks
            .iter()
            .map(|&o| o.checked_add(mdat_payload_at).expect("offsets fit 32 bits"))
            .collect();
        let stbl = [
            bx(b"stsd", &[be32s(&[0, 1]), self.entry.clone()].concat()),
            full(b"stts", &[1, count, self.delta]),
            full(b"stsc", &[1, 1, self.samples_per_chunk, 1]),
            stsz,
            full(
                b"stco",
                &[&[offsets.len() as u32], offsets.as_slice()].concat(),
            ),
        ]
        .concat();
        let minf = bx(b"minf", &bx(b"stbl", &stbl));
        let mdia = bx(b"mdia", &[mdhd, hdlr, minf].concat());
        let mut trak = tkhd;
        if !self.hint_refs.is_empty() {
            trak.extend(bx(b"tref", &bx(b"hint", &be32s(&self.hint_refs))));
        }
        trak.extend(mdia);
        bx(b"trak", &trak)
    }
}

/// A whole file: 'ftyp', 'mdat' holding `mdat`, then 'moov' with `tracks`
/// (chunk offsets count from the start of `mdat`).
pub fn movie(tracks: &[TrackSpec], mdat: &[u8]) -> Vec<u8> {
    let ftyp = bx(b"ftyp", b"isom\0\0\x02\0isomavc1");
    let mdat_payload_at = u32::try_from(ftyp.len() + 8).expect("small ftyp");
    let mut file = ftyp;
    file.extend(bx(b"mdat", mdat));
    let duration = tracks
        .iter()
        .map(|t| u64::from(t.sizes.count()) * u64::from(t.delta) / 90)
        .max()
        .unwrap_or(0);
    let mvhd = full(
        b"mvhd",
        &[0, 0, 1000, u32::try_from(duration).unwrap_or(u32::MAX)],
    );
    let mut moov = mvhd;
    for t in tracks {
        moov.extend(t.trak(mdat_payload_at));
    }
    file.extend(bx(b"moov", &moov));
    file
}

/// `n` chunk offsets, all 0: every chunk starts at the same byte, so chunks
/// overlap and a few bytes stand for any number of samples.
pub fn overlapping_chunks(n: u32) -> Vec<u32> {
    vec![0; n as usize]
}

// ------------------------------------------------------- files and maps

/// A scratch directory for this test binary's files.
pub fn scratch() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile_files");
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// Writes `bytes` to the scratch file `name` and memory-maps it, as the
/// engine does with media files.
pub fn write_and_map(name: &str, bytes: &[u8]) -> Arc<Mmap> {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("write the test file");
    let file = File::open(&path).expect("open the test file");
    // SAFETY: the file is private to this test process and not modified
    // while mapped.
    #[allow(unsafe_code)]
    let map = unsafe { Mmap::map(&file) }.expect("map the test file");
    Arc::new(map)
}

// ------------------------------------------------------------- harness

/// Address space of a child, bytes (`ulimit -v`): far above what the
/// budgets let a hostile file cost, far below the gigabytes the old code
/// asked for, so that an unbounded allocation fails in the child (and the
/// test with it) instead of pushing the shared machine into swap.
pub const CHILD_ADDRESS_SPACE: u64 = 1 << 30;

/// How long a child may run: a guard against hangs (the old code spent 94 s
/// on one of these files), not a performance assertion.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

const CHILD_VAR: &str = "CADENCE_HOSTILE_CHILD";

/// Runs `body` in a child process: this test binary again, filtered to the
/// test `name`, under [`CHILD_ADDRESS_SPACE`] and [`CHILD_TIMEOUT`]. In the
/// child (recognised by an environment variable) it runs `body` directly.
/// The parent fails unless the child ran exactly that one test and it
/// passed.
pub fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_VAR).as_deref() == Ok(name) {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out_path = scratch().join(format!("{name}.log"));
    let out = File::create(&out_path).expect("create the child's log");
    let err = out.try_clone().expect("clone the log handle");
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg((CHILD_ADDRESS_SPACE / 1024).to_string())
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, name)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn sh (needed for ulimit)");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            break Some(s);
        }
        if started.elapsed() > CHILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(&out_path).unwrap_or_default();
    print!("{log}");
    let Some(status) = status else {
        panic!("{name}: still running after {CHILD_TIMEOUT:?}; killed");
    };
    assert!(status.success(), "{name}: child failed ({status})");
    assert!(
        log.contains("test result: ok. 1 passed"),
        "{name}: the child did not run the test"
    );
}

/// This process's peak resident set size ('VmHWM' of /proc/self/status),
/// bytes.
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

/// Asserts that the peak resident memory stays below `limit` bytes, and
/// prints it.
pub fn assert_peak_below(what: &str, limit: u64) {
    let peak = peak_rss();
    println!(
        "{what}: peak RSS {} KiB (limit {} KiB)",
        peak / 1024,
        limit / 1024
    );
    assert!(
        peak < limit,
        "{what}: peak RSS {peak} bytes exceeds {limit}"
    );
}
