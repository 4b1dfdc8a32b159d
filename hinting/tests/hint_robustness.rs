//! Corrupt and truncated files: the reader and compiler must return `Err`
//! (or `Ok`) but never panic, hang or allocate from a declared count.
//!
//! Truncating a file anywhere must fail (something is always missing: the
//! `moov` or part of `mdat`); flipping bytes inside `moov` or inside hint
//! samples may fail or succeed. Deterministic pseudo-random positions, kept
//! few enough for a debug build to finish in seconds.

mod hint_common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use cadence_hinting::compile::compile_slice;
use cadence_hinting::mp4::{FourCC, Movie};
use cadence_hinting::HintError;
use hint_common::*;

fn files() -> Vec<PathBuf> {
    let mut v = apple_files().unwrap_or_default();
    let ff = ffmpeg_files();
    v.push(ff[0].clone()); // moov after mdat
    v.push(ff[2].clone()); // moov before mdat
    v
}

/// xorshift64: deterministic positions and values.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn compile_no_panic(what: &str, data: &[u8]) -> Result<usize, HintError> {
    match catch_unwind(AssertUnwindSafe(|| {
        compile_slice(data).map(|c| c.tracks.len())
    })) {
        Ok(r) => r,
        Err(_) => panic!("compiler panicked on {what}"),
    }
}

fn kind(e: &HintError) -> &'static str {
    match e {
        HintError::Truncated { .. } => "Truncated",
        HintError::MissingBox { .. } => "MissingBox",
        HintError::InvalidBox { .. } => "InvalidBox",
        HintError::BadSample { .. } => "BadSample",
        HintError::BadHintSample { .. } => "BadHintSample",
        HintError::BadConstructor { .. } => "BadConstructor",
        _ => "other",
    }
}

#[test]
fn truncated_files_are_rejected() {
    for path in files() {
        let data = std::fs::read(&path).unwrap();
        let movie = Movie::parse(&data).unwrap();
        let mut cuts: Vec<usize> = vec![0, 4, 8, 9, 16, data.len() - 1];
        let (ms, me) = (movie.moov.start as usize, movie.moov.end as usize);
        cuts.extend((ms..me).step_by(997));
        cuts.extend([ms + 8, ms + 9, me - 8, me - 1]);
        let mdat = &movie.mdat[0];
        let (ds, de) = (mdat.start as usize, mdat.end as usize);
        cuts.extend((0..24).map(|k| ds + (de - ds) * k / 24));
        let mut kinds = std::collections::BTreeMap::new();
        for &cut in &cuts {
            let what = format!("{} cut at {cut}", path.display());
            let e = compile_no_panic(&what, &data[..cut]).expect_err(&what);
            let msg = e.to_string();
            assert!(!msg.is_empty());
            *kinds.entry(kind(&e)).or_insert(0) += 1;
            if cut == me - 1 {
                // The moov itself is named when it is cut.
                assert!(
                    matches!(&e, HintError::Truncated { box_path, .. } if box_path == "moov"),
                    "{what}: {e}"
                );
            }
        }
        println!("{}: {} cuts, errors {kinds:?}", path.display(), cuts.len());
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for path in files() {
        let mut data = std::fs::read(&path).unwrap();
        let movie = Movie::parse(&data).unwrap();
        let (ms, me) = (movie.moov.start, movie.moov.end);
        // Hint sample byte ranges, to corrupt packet tables and constructors.
        let hint_ranges: Vec<(u64, u32)> = movie
            .tracks
            .iter()
            .filter(|t| t.handler == FourCC(*b"hint"))
            .flat_map(|t| {
                t.samples
                    .iter()
                    .map(|(_, s)| (s.offset, s.size))
                    .collect::<Vec<_>>()
            })
            .collect();
        drop(movie);
        let mut ok = 0;
        let mut err = std::collections::BTreeMap::new();
        for round in 0..200 {
            // 1-3 flips, in moov for even rounds, in hint samples for odd.
            let flips = 1 + rng.below(3) as usize;
            let mut saved = Vec::new();
            for _ in 0..flips {
                let pos = if round % 2 == 0 || hint_ranges.is_empty() {
                    ms + rng.below(me - ms)
                } else {
                    let (o, s) = hint_ranges[rng.below(hint_ranges.len() as u64) as usize];
                    o + rng.below(u64::from(s))
                } as usize;
                let x = 1 + rng.below(255) as u8;
                // Favour values that make counts and sizes extreme.
                let v = match rng.below(4) {
                    0 => 0xff,
                    1 => 0x00,
                    _ => data[pos] ^ x,
                };
                saved.push((pos, data[pos]));
                data[pos] = v;
            }
            let what = format!("{} round {round} flips {saved:?}", path.display());
            match compile_no_panic(&what, &data) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    *err.entry(kind(&e)).or_insert(0) += 1;
                }
            }
            for (pos, b) in saved.into_iter().rev() {
                data[pos] = b;
            }
        }
        println!("{}: flips: {ok} compiled, rejected {err:?}", path.display());
        assert!(!err.is_empty(), "some corruption must be detected");
    }
}

#[test]
fn hostile_counts_do_not_allocate() {
    // A minimal moov whose stsz declares 2^32-1 samples in 12 bytes and
    // whose stco declares 2^32-1 chunks: rejected as truncated, quickly.
    fn b(t: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(t);
        v.extend_from_slice(body);
        v
    }
    let full = |v: &[u32]| v.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
    let mvhd = b(b"mvhd", &full(&[0, 0, 0, 600, 0]));
    let tkhd = b(b"tkhd", &full(&[0, 0, 0, 1, 0, 0]));
    let mdhd = b(b"mdhd", &full(&[0, 0, 0, 90000, 0, 0]));
    let hdlr = b(
        b"hdlr",
        &full(&[0, 0, u32::from_be_bytes(*b"hint"), 0, 0, 0]),
    );
    for (name, stsz, stco) in [
        ("stsz", full(&[0, 0, u32::MAX]), full(&[0, 0])),
        ("stco", full(&[0, 0, 0]), full(&[0, u32::MAX])),
    ] {
        let stbl = [
            b(b"stsd", &full(&[0, 0])),
            b(b"stts", &full(&[0, 0])),
            b(b"stsc", &full(&[0, 0])),
            b(b"stsz", &stsz),
            b(b"stco", &stco),
        ]
        .concat();
        let minf = b(b"minf", &b(b"stbl", &stbl));
        let mdia = b(b"mdia", &[mdhd.clone(), hdlr.clone(), minf].concat());
        let trak = b(b"trak", &[tkhd.clone(), mdia].concat());
        let moov = b(b"moov", &[mvhd.clone(), trak].concat());
        let e = compile_slice(&moov).unwrap_err();
        assert!(
            matches!(&e, HintError::Truncated { box_path, .. } if box_path.ends_with(name)),
            "{name}: {e}"
        );
    }
}
