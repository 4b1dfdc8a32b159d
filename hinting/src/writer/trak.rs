//! The 'trak' box of one RTP hint track (ISO/IEC 14496-12 §8.3, §9.1;
//! QuickTime "Hint media"):
//!
//! ```text
//! trak
//!   tkhd                  track ID, flags 0x2 (in movie, not enabled for playback)
//!   edts/elst             the media track's edit list, media times in the RTP clock
//!   tref/hint             [media track ID]
//!   mdia
//!     mdhd                timescale = RTP clock rate
//!     hdlr                'hint'
//!     minf
//!       hmhd              max/avg PDU size and bitrate
//!       dinf/dref/url     self-contained
//!       stbl
//!         stsd/'rtp '     hinttrackversion 1, maxpacketsize; tims, tsro, snro
//!         stts stss stsz stsc stco|co64   (one chunk holding every hint sample;
//!                         an empty lead-in hint sample when the first one starts after 0)
//!   udta/hnti/'sdp '      track-level SDP
//! ```

use crate::packetize::plan::TrackPlan;
use crate::packetize::RTP_HEADER_LEN;

use super::bytes::BoxBuf;

/// 'und' as a packed ISO-639-2/T language code (mdhd).
const LANGUAGE_UND: u16 = 0x55c4;

/// Identity transformation matrix (tkhd), 16.16 and 2.30 fixed point.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Where a hint track's samples lie in the output file.
#[derive(Debug, Clone, Copy)]
pub struct SampleLayout<'a> {
    /// Size of each encoded hint sample, bytes.
    pub sizes: &'a [u32],
    /// Absolute file offset of the track's one chunk.
    pub chunk_offset: u64,
    /// Write 'co64' instead of 'stco'.
    pub co64: bool,
}

/// Builds the hint 'trak' for `plan`. `movie_timescale` is 'mvhd''s;
/// `quicktime` selects QuickTime-style 'hdlr' fields (component type 'mhlr',
/// Pascal-string name).
pub fn build(
    plan: &TrackPlan,
    movie_timescale: u32,
    quicktime: bool,
    layout: &SampleLayout<'_>,
) -> Vec<u8> {
    let mut b = BoxBuf::new();
    b.open(b"trak");
    tkhd(&mut b, plan, movie_timescale);
    if !plan.edits.is_empty() {
        elst(&mut b, plan);
    }
    b.open(b"tref")
        .open(b"hint")
        .u32(plan.media_track_id)
        .close()
        .close();
    b.open(b"mdia");
    let v1 = plan.duration > u64::from(u32::MAX);
    b.open_full(b"mdhd", u8::from(v1), 0);
    if v1 {
        b.u64(0).u64(0).u32(plan.clock_rate).u64(plan.duration);
    } else {
        b.u32(0)
            .u32(0)
            .u32(plan.clock_rate)
            .u32(plan.duration as u32);
    }
    b.u16(LANGUAGE_UND).u16(0).close();
    hdlr(&mut b, quicktime);
    b.open(b"minf");
    hmhd(&mut b, plan);
    b.open(b"dinf")
        .open_full(b"dref", 0, 0)
        .u32(1)
        .open_full(b"url ", 0, 1)
        .close()
        .close()
        .close();
    stbl(&mut b, plan, layout);
    b.close(); // minf
    b.close(); // mdia
    b.open(b"udta")
        .open(b"hnti")
        .open(b"sdp ")
        .raw(plan.sdp.as_bytes())
        .close()
        .close()
        .close();
    b.close(); // trak
    b.finish()
}

/// Duration of the empty hint sample that precedes the planned ones when
/// the first planned hint sample does not start at time 0 (hint sample times
/// are cumulative 'stts' durations from 0): RTP clock ticks, 0 for none.
///
/// # Errors
/// A description when the gap exceeds a 32-bit 'stts' delta.
pub fn lead_in(plan: &TrackPlan) -> Result<u32, String> {
    let first = plan.timing.first().map_or(0, |t| t.time);
    u32::try_from(first).map_err(|_| {
        format!(
            "hint track {}: first hint sample at {first} ticks does not fit a 32-bit 'stts' delta",
            plan.hint_track_id
        )
    })
}

/// Hint track duration in the movie timescale: the edit list's total, or the
/// media duration converted.
fn movie_duration(plan: &TrackPlan, movie_timescale: u32) -> u64 {
    if plan.edits.is_empty() {
        crate::packetize::plan::rescale(plan.duration, plan.clock_rate, movie_timescale)
    } else {
        plan.edits.iter().map(|e| e.segment_duration).sum()
    }
}

fn tkhd(b: &mut BoxBuf, plan: &TrackPlan, movie_timescale: u32) {
    let duration = movie_duration(plan, movie_timescale);
    let v1 = duration > u64::from(u32::MAX);
    b.open_full(b"tkhd", u8::from(v1), 0x2);
    if v1 {
        b.u64(0).u64(0).u32(plan.hint_track_id).u32(0).u64(duration);
    } else {
        b.u32(0)
            .u32(0)
            .u32(plan.hint_track_id)
            .u32(0)
            .u32(duration as u32);
    }
    b.zeros(8).u16(0).u16(0).u16(0).u16(0); // reserved, layer, alternate group, volume, reserved
    for m in MATRIX {
        b.u32(m);
    }
    b.u32(0).u32(0).close(); // width, height
}

fn elst(b: &mut BoxBuf, plan: &TrackPlan) {
    let v1 = plan
        .edits
        .iter()
        .any(|e| e.segment_duration > u64::from(u32::MAX) || e.media_time > i64::from(i32::MAX));
    b.open(b"edts")
        .open_full(b"elst", u8::from(v1), 0)
        .u32(plan.edits.len() as u32);
    for e in &plan.edits {
        if v1 {
            b.u64(e.segment_duration).u64(e.media_time as u64);
        } else {
            b.u32(e.segment_duration as u32).i32(e.media_time as i32);
        }
        b.i32(e.media_rate);
    }
    b.close().close();
}

fn hdlr(b: &mut BoxBuf, quicktime: bool) {
    const NAME: &[u8] = b"Cadence RTP hint track";
    b.open_full(b"hdlr", 0, 0);
    b.raw(if quicktime { b"mhlr" } else { &[0; 4] })
        .raw(b"hint")
        .zeros(12);
    if quicktime {
        b.u8(NAME.len() as u8).raw(NAME);
    } else {
        b.raw(NAME).u8(0);
    }
    b.close();
}

/// 'hmhd': maxPDUsize, avgPDUsize (bytes, RTP header included), maxbitrate
/// (largest count of bits sent in any 1-second window of hint time) and
/// avgbitrate (bit/s).
fn hmhd(b: &mut BoxBuf, plan: &TrackPlan) {
    let packets = plan.stats.packets.max(1);
    let total_bytes = plan
        .stats
        .packets
        .saturating_mul(u64::from(RTP_HEADER_LEN))
        .saturating_add(plan.stats.payload_bytes);
    let avg_pdu = total_bytes / packets;
    let seconds = plan.duration as f64 / f64::from(plan.clock_rate.max(1));
    let avg_bitrate = if seconds > 0.0 {
        (total_bytes as f64 * 8.0 / seconds) as u64
    } else {
        0
    };
    let mut max_bits = 0u64;
    let mut window_bits = 0u64;
    let mut start = 0usize;
    let bits_of = |i: usize| -> u64 {
        plan.samples[i]
            .packets
            .iter()
            .map(|p| (u64::from(p.payload_len()) + u64::from(RTP_HEADER_LEN)) * 8)
            .sum()
    };
    for i in 0..plan.samples.len() {
        window_bits += bits_of(i);
        while plan.timing[i].time - plan.timing[start].time >= u64::from(plan.clock_rate) {
            window_bits -= bits_of(start);
            start += 1;
        }
        max_bits = max_bits.max(window_bits);
    }
    b.open_full(b"hmhd", 0, 0)
        .u16(plan.stats.max_packet_size.min(u32::from(u16::MAX)) as u16)
        .u16(avg_pdu.min(u64::from(u16::MAX)) as u16)
        .u32(max_bits.min(u64::from(u32::MAX)) as u32)
        .u32(avg_bitrate.min(u64::from(u32::MAX)) as u32)
        .u32(0)
        .close();
}

fn stbl(b: &mut BoxBuf, plan: &TrackPlan, layout: &SampleLayout<'_>) {
    b.open(b"stbl");
    // stsd with one 'rtp ' entry.
    b.open_full(b"stsd", 0, 0).u32(1);
    b.open(b"rtp ")
        .zeros(6)
        .u16(1)
        .u16(1)
        .u16(1)
        .u32(plan.stats.max_packet_size);
    b.open(b"tims").u32(plan.clock_rate).close();
    b.open(b"tsro").i32(0).close();
    b.open(b"snro").i32(0).close();
    b.close().close();
    // stts: run-length encoded durations, after the lead-in sample.
    let lead_in = lead_in(plan).unwrap_or(0);
    let mut runs: Vec<(u32, u32)> = Vec::new();
    if lead_in > 0 {
        runs.push((1, lead_in));
    }
    for t in &plan.timing {
        match runs.last_mut() {
            Some((count, delta)) if *delta == t.duration => *count += 1,
            _ => runs.push((1, t.duration)),
        }
    }
    b.open_full(b"stts", 0, 0).u32(runs.len() as u32);
    for (count, delta) in runs {
        b.u32(count).u32(delta);
    }
    b.close();
    // stss only when some hint sample is not a sync sample.
    if plan.samples.iter().any(|s| !s.sync) {
        let first = if lead_in > 0 { 2 } else { 1 };
        let sync: Vec<u32> = (first..)
            .zip(&plan.samples)
            .filter(|(_, s)| s.sync)
            .map(|(n, _)| n)
            .collect();
        b.open_full(b"stss", 0, 0).u32(sync.len() as u32);
        for n in sync {
            b.u32(n);
        }
        b.close();
    }
    b.open_full(b"stsz", 0, 0)
        .u32(0)
        .u32(layout.sizes.len() as u32);
    for &s in layout.sizes {
        b.u32(s);
    }
    b.close();
    b.open_full(b"stsc", 0, 0)
        .u32(1)
        .u32(1)
        .u32(layout.sizes.len() as u32)
        .u32(1)
        .close();
    if layout.co64 {
        b.open_full(b"co64", 0, 0)
            .u32(1)
            .u64(layout.chunk_offset)
            .close();
    } else {
        b.open_full(b"stco", 0, 0)
            .u32(1)
            .u32(layout.chunk_offset as u32)
            .close();
    }
    b.close();
}
