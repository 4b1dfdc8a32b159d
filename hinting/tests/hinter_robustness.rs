//! Corrupted inputs never panic the packetizers, the planner, the in-memory
//! schedule or the writer: each either works or returns a typed error.

mod hinter_common;

use cadence_hinting::mp4::Movie;
use cadence_hinting::packetize::plain::schedule_tracks;
use cadence_hinting::packetize::plan::{plan_movie, PlanOptions};
use cadence_hinting::writer::write_hinted;
use hinter_common::fixture;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Runs the whole pipeline on `data`; returns whether a hinted file was written.
fn pipeline(data: &[u8]) -> bool {
    let Ok(movie) = Movie::parse(data) else {
        return false;
    };
    let plan = plan_movie(
        data,
        &movie,
        &PlanOptions {
            mtu: 700,
            tracks: None,
        },
    );
    let _ = schedule_tracks(data, &movie, &plan);
    if plan.tracks.is_empty() {
        return false;
    }
    let mut out = Vec::new();
    write_hinted(data, &movie, &plan, &mut out).is_ok()
}

#[test]
fn corrupted_boxes_and_samples_do_not_panic() {
    for name in [
        "aac_only_plain.mp4",
        "hevc_aac_plain.mp4",
        "h264_bframes_plain.mp4",
    ] {
        let original = std::fs::read(fixture(name)).expect("read fixture");
        let movie = Movie::parse(&original).expect("parse");
        let moov = movie.moov.start as usize..movie.moov.end as usize;
        let mdat = movie.mdat[0].start as usize..movie.mdat[0].end as usize;
        assert!(pipeline(&original), "{name}: the intact file hints");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ original.len() as u64);
        let mut written = 0;
        for round in 0..150 {
            let mut data = original.clone();
            // Flip 1-4 bytes in moov (tables, sample entries, avcC/hvcC/esds)
            // and 1-4 bytes in mdat (NAL lengths, AU bytes).
            for _ in 0..1 + rng.next() % 4 {
                let at = moov.start + (rng.next() as usize) % moov.len();
                data[at] ^= 1 << (rng.next() % 8);
                let at = mdat.start + (rng.next() as usize) % mdat.len();
                data[at] = rng.next() as u8;
            }
            if round % 10 == 0 {
                data.truncate(moov.start.max(mdat.start) + (rng.next() as usize) % 4096);
            }
            written += usize::from(pipeline(&data));
        }
        eprintln!("{name}: {written} of 150 corrupted files still hinted");
    }
}
