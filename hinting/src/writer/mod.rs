//! Writing hinted files: the original file with one RTP hint track per
//! planned media track (see [`crate::packetize::plan`]), and the reverse,
//! stripping hint tracks.
//!
//! The output is the input's top-level boxes in their order with 'moov'
//! rebuilt, followed by a new 'mdat' that holds the hint samples:
//!
//! - media tracks and their sample bytes are copied unchanged; their
//!   'stco'/'co64' entries are shifted by however far their chunk's box moved
//!   (the 'moov' size change when 'moov' precedes 'mdat', or the removal of an
//!   'mdat' that held only old hint samples);
//! - existing hint tracks and moov/udta/hnti are removed (re-hinting
//!   replaces them);
//! - the new hint 'trak's ([`trak`]) reference the media tracks through
//!   'tref'/'hint' and carry their payload as sample constructors
//!   ([`hint_sample`]), so no media byte is duplicated;
//! - moov/udta/hnti/'rtp ' gets the session-level SDP; 'mvhd'
//!   next_track_ID is raised past the new track IDs.
//!
//! Refused: fragmented files ('moof'/'mvex'), and files whose shifted 32-bit
//! chunk offsets would pass 4 GiB.

pub mod bytes;
pub mod hint_sample;
pub mod trak;

use std::io::Write;

use crate::error::HintError;
use crate::mp4::{BoxIter, BoxRange, FourCC, Movie, Track};
use crate::packetize::plan::FilePlan;

use bytes::BoxBuf;

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The input is malformed.
    #[error(transparent)]
    Input(#[from] HintError),
    /// The input uses a structure the writer does not rewrite.
    #[error("cannot rewrite this file: {0}")]
    Unsupported(String),
    /// Writing the output failed.
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What a rewrite did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Bytes written.
    pub bytes_written: u64,
    /// Hint tracks added.
    pub hint_tracks_added: usize,
    /// Hint tracks removed from the input.
    pub hint_tracks_removed: usize,
    /// Top-level 'mdat' boxes dropped because only removed hint tracks used them.
    pub mdats_dropped: usize,
    /// Chunk offsets of kept tracks whose value changed.
    pub chunk_offsets_shifted: u64,
    /// Bytes of hint samples written (the new 'mdat' payload).
    pub hint_sample_bytes: u64,
}

/// Writes `data` (parsed as `movie`) to `out` with the hint tracks of `plan`
/// added and any existing hint tracks replaced.
///
/// # Errors
/// [`WriteError::Unsupported`] for fragmented files or 32-bit chunk offsets
/// that would overflow; [`WriteError::Input`] for malformed boxes;
/// [`WriteError::Io`] when writing fails.
pub fn write_hinted<W: Write>(
    data: &[u8],
    movie: &Movie,
    plan: &FilePlan,
    out: &mut W,
) -> Result<WriteSummary, WriteError> {
    rewrite(data, movie, Some(plan), out)
}

/// Writes `data` (parsed as `movie`) to `out` without its hint tracks and
/// session-level hint SDP; 'mdat' boxes that only hint tracks used are
/// dropped. Errors as [`write_hinted`].
pub fn write_stripped<W: Write>(
    data: &[u8],
    movie: &Movie,
    out: &mut W,
) -> Result<WriteSummary, WriteError> {
    rewrite(data, movie, None, out)
}

/// The encoded hint samples of every planned track, back to back.
struct HintData {
    bytes: Vec<u8>,
    /// Per track: offset of its chunk within `bytes`, and its sample sizes.
    tracks: Vec<(u64, Vec<u32>)>,
}

/// Bytes of a hint sample without packets: entry count 0, reserved.
const EMPTY_HINT_SAMPLE: [u8; 4] = [0; 4];

fn encode_hint_data(plan: &FilePlan) -> Result<HintData, WriteError> {
    let mut buf = BoxBuf::new();
    let mut tracks = Vec::with_capacity(plan.tracks.len());
    for t in &plan.tracks {
        let start = buf.bytes.len() as u64;
        let mut sizes = Vec::with_capacity(t.samples.len() + 1);
        if trak::lead_in(t).map_err(WriteError::Unsupported)? > 0 {
            buf.raw(&EMPTY_HINT_SAMPLE);
            sizes.push(EMPTY_HINT_SAMPLE.len() as u32);
        }
        let mut sequence = 0u16;
        for (s, timing) in t.samples.iter().zip(&t.timing) {
            let before = buf.bytes.len();
            hint_sample::encode(s, timing, t.payload_type, &mut sequence, &mut buf);
            sizes.push((buf.bytes.len() - before) as u32);
        }
        tracks.push((start, sizes));
    }
    Ok(HintData {
        bytes: buf.bytes,
        tracks,
    })
}

/// A top-level box of the output: an input box kept at a new position.
#[derive(Debug, Clone)]
struct Placed {
    range: BoxRange,
    new_start: u64,
    is_moov: bool,
}

fn rewrite<W: Write>(
    data: &[u8],
    movie: &Movie,
    plan: Option<&FilePlan>,
    out: &mut W,
) -> Result<WriteSummary, WriteError> {
    if movie
        .top_level
        .iter()
        .any(|b| matches!(&b.fourcc.0, b"moof" | b"mfra"))
    {
        return Err(WriteError::Unsupported(
            "fragmented MP4 (moof) files are not supported".into(),
        ));
    }
    let kept: Vec<&Track> = movie.tracks.iter().filter(|t| !t.is_hint()).collect();
    let removed = movie.tracks.len() - kept.len();
    // An 'mdat' is dropped when no kept track has a chunk in it but a removed
    // hint track does.
    let chunk_in = |t: &Track, b: &BoxRange| {
        t.samples
            .chunks()
            .iter()
            .any(|c| c.sample_count > 0 && b.range().contains(&c.offset))
    };
    let dropped: Vec<bool> = movie
        .top_level
        .iter()
        .map(|b| {
            b.fourcc == FourCC(*b"mdat")
                && !kept.iter().any(|t| chunk_in(t, b))
                && movie.tracks.iter().any(|t| t.is_hint() && chunk_in(t, b))
        })
        .collect();
    let hint = plan.map(encode_hint_data).transpose()?;
    let hint_len = hint.as_ref().map_or(0, |h| h.bytes.len() as u64);
    let quicktime = movie.is_quicktime();

    // Lay out with a trial moov to learn its size (offset values do not
    // change sizes), switching the hint tracks to co64 if needed.
    let mut co64 = false;
    let (moov, placed, mdat_start) = loop {
        let trial = build_moov(
            data,
            movie,
            &kept,
            plan,
            hint.as_ref(),
            &[],
            0,
            co64,
            quicktime,
        )?;
        let (placed, end) = place(movie, &dropped, trial.len() as u64);
        let mdat_header = if hint_len + 8 > u64::from(u32::MAX) {
            16
        } else {
            8
        };
        if !co64 && end + mdat_header + hint_len > u64::from(u32::MAX) && plan.is_some() {
            co64 = true;
            continue;
        }
        let moov = build_moov(
            data,
            movie,
            &kept,
            plan,
            hint.as_ref(),
            &placed,
            end + mdat_header,
            co64,
            quicktime,
        )?;
        debug_assert_eq!(moov.len(), trial.len());
        break (moov, placed, end);
    };

    let mut summary = WriteSummary {
        hint_tracks_added: plan.map_or(0, |p| p.tracks.len()),
        hint_tracks_removed: removed,
        mdats_dropped: dropped.iter().filter(|d| **d).count(),
        hint_sample_bytes: hint_len,
        ..WriteSummary::default()
    };
    summary.chunk_offsets_shifted = kept
        .iter()
        .flat_map(|t| t.samples.chunks())
        .filter(|c| map_offset(&placed, c.offset).is_some_and(|n| n != c.offset))
        .count() as u64;
    for p in &placed {
        if p.is_moov {
            out.write_all(&moov)?;
            summary.bytes_written += moov.len() as u64;
            continue;
        }
        let (s, e) = (p.range.start as usize, p.range.end as usize);
        let bytes = data.get(s..e).ok_or_else(|| {
            WriteError::Unsupported(format!("box {} outside the file", p.range.path))
        })?;
        let size32 = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if size32 == 0 {
            // A box running to the end of the file: give it an explicit size
            // so the appended 'mdat' stays separate.
            let len = u32::try_from(bytes.len()).map_err(|_| {
                WriteError::Unsupported(format!(
                    "{} runs to the end of a file over 4 GiB",
                    p.range.path
                ))
            })?;
            out.write_all(&len.to_be_bytes())?;
            out.write_all(&bytes[4..])?;
        } else {
            out.write_all(bytes)?;
        }
        summary.bytes_written += bytes.len() as u64;
    }
    if let Some(h) = &hint {
        debug_assert_eq!(summary.bytes_written, mdat_start);
        if h.bytes.len() as u64 + 8 > u64::from(u32::MAX) {
            out.write_all(&1u32.to_be_bytes())?;
            out.write_all(b"mdat")?;
            out.write_all(&(h.bytes.len() as u64 + 16).to_be_bytes())?;
            summary.bytes_written += 16;
        } else {
            out.write_all(&(h.bytes.len() as u32 + 8).to_be_bytes())?;
            out.write_all(b"mdat")?;
            summary.bytes_written += 8;
        }
        out.write_all(&h.bytes)?;
        summary.bytes_written += h.bytes.len() as u64;
    }
    out.flush()?;
    Ok(summary)
}

/// New positions of the kept top-level boxes given the new moov size; also
/// returns the end of the last one.
fn place(movie: &Movie, dropped: &[bool], moov_len: u64) -> (Vec<Placed>, u64) {
    let mut pos = 0u64;
    let mut placed = Vec::new();
    for (b, &drop) in movie.top_level.iter().zip(dropped) {
        if drop {
            continue;
        }
        let is_moov = b.start == movie.moov.start;
        placed.push(Placed {
            range: b.clone(),
            new_start: pos,
            is_moov,
        });
        pos += if is_moov { moov_len } else { b.end - b.start };
    }
    (placed, pos)
}

/// New offset of input offset `o`, when it lies in a kept non-moov box.
fn map_offset(placed: &[Placed], o: u64) -> Option<u64> {
    placed
        .iter()
        .find(|p| !p.is_moov && p.range.range().contains(&o))
        .map(|p| o - p.range.start + p.new_start)
}

/// Builds the new 'moov'. With an empty `placed` it builds a trial of the
/// right size with unpatched offsets.
#[allow(clippy::too_many_arguments)]
fn build_moov(
    data: &[u8],
    movie: &Movie,
    kept: &[&Track],
    plan: Option<&FilePlan>,
    hint: Option<&HintData>,
    placed: &[Placed],
    hint_mdat_body: u64,
    co64: bool,
    quicktime: bool,
) -> Result<Vec<u8>, WriteError> {
    let moov_bytes = slice(data, movie.moov.start, movie.moov.end)?;
    let body = &moov_bytes[usize::from(movie.moov.header_len)..];
    let mut b = BoxBuf::new();
    b.open(b"moov");
    let max_hint_id = plan
        .and_then(|p| p.tracks.iter().map(|t| t.hint_track_id).max())
        .unwrap_or(0);
    let mut last_end = 0usize;
    let children: Vec<_> =
        BoxIter::new(body, movie.moov.body_start(), "moov").collect::<Result<_, _>>()?;
    let last_trak = children.iter().rposition(|c| c.fourcc == FourCC(*b"trak"));
    let mut wrote_udta = false;
    for (i, child) in children.iter().enumerate() {
        let rel = (child.start - movie.moov.body_start()) as usize;
        let whole = &body[rel..rel + (child.end() - child.start) as usize];
        last_end = rel + whole.len();
        match &child.fourcc.0 {
            b"mvex" => {
                return Err(WriteError::Unsupported(
                    "fragmented MP4 (mvex) files are not supported".into(),
                ))
            }
            b"mvhd" => {
                let mut m = whole.to_vec();
                let at = usize::from(child.header_len)
                    + if child.body.first() == Some(&1) {
                        108
                    } else {
                        96
                    };
                if let Some(field) = m.get_mut(at..at + 4) {
                    let next = u32::from_be_bytes([field[0], field[1], field[2], field[3]]);
                    let want = next.max(max_hint_id.saturating_add(1)).max(
                        kept.iter()
                            .map(|t| t.track_id)
                            .max()
                            .unwrap_or(0)
                            .saturating_add(1),
                    );
                    field.copy_from_slice(&want.to_be_bytes());
                }
                b.raw(&m);
            }
            b"trak" => {
                if let Some(track) = kept.iter().find(|t| t.trak.start == child.start) {
                    b.raw(&patched_trak(whole, track, placed)?);
                }
            }
            b"udta" => {
                udta(&mut b, child, plan);
                wrote_udta = true;
            }
            _ => {
                b.raw(whole);
            }
        }
        if Some(i) == last_trak || (last_trak.is_none() && i + 1 == children.len()) {
            if let (Some(plan), Some(hint)) = (plan, hint) {
                for (t, (start, sizes)) in plan.tracks.iter().zip(&hint.tracks) {
                    let layout = trak::SampleLayout {
                        sizes,
                        chunk_offset: hint_mdat_body + start,
                        co64,
                    };
                    b.raw(&trak::build(t, movie.timescale, quicktime, &layout));
                }
            }
        }
    }
    b.raw(&body[last_end..]);
    if !wrote_udta {
        if let Some(plan) = plan.filter(|p| !p.tracks.is_empty()) {
            b.open(b"udta");
            session_hnti(&mut b, plan);
            b.close();
        }
    }
    b.close();
    Ok(b.finish())
}

/// moov/udta without its 'hnti', plus the new session 'hnti' when hinting.
/// An udta left empty is dropped.
fn udta(b: &mut BoxBuf, udta: &crate::mp4::BoxRef<'_>, plan: Option<&FilePlan>) {
    let mut inner = BoxBuf::new();
    let mut last_end = 0usize;
    for c in BoxIter::new(udta.body, udta.body_start(), "moov/udta").flatten() {
        let rel = (c.start - udta.body_start()) as usize;
        let len = (c.end() - c.start) as usize;
        last_end = rel + len;
        if c.fourcc != FourCC(*b"hnti") {
            inner.raw(&udta.body[rel..rel + len]);
        }
    }
    let hinted = plan.filter(|p| !p.tracks.is_empty());
    if let Some(plan) = hinted {
        session_hnti(&mut inner, plan);
    }
    // QuickTime's 4-byte zero terminator, or other trailing bytes, stay last.
    let tail = udta.body.get(last_end..).unwrap_or_default();
    if inner.bytes.is_empty() && tail.iter().all(|&x| x == 0) {
        return;
    }
    b.open(b"udta").raw(&inner.bytes).raw(tail).close();
}

/// hnti/'rtp ' with description format 'sdp ' and the session-level SDP.
fn session_hnti(b: &mut BoxBuf, plan: &FilePlan) {
    b.open(b"hnti")
        .open(b"rtp ")
        .raw(b"sdp ")
        .raw(plan.session_sdp().as_bytes())
        .close()
        .close();
}

fn slice(data: &[u8], start: u64, end: u64) -> Result<&[u8], WriteError> {
    usize::try_from(start)
        .ok()
        .zip(usize::try_from(end).ok())
        .and_then(|(s, e)| data.get(s..e))
        .ok_or_else(|| {
            WriteError::Unsupported(format!("bytes {start}..{end} lie outside the file"))
        })
}

/// A kept 'trak' with its chunk offsets moved to their new positions. With
/// an empty `placed` (trial layout) the bytes are copied unchanged.
fn patched_trak(whole: &[u8], track: &Track, placed: &[Placed]) -> Result<Vec<u8>, WriteError> {
    let mut t = whole.to_vec();
    let Some(box_range) = &track.chunk_offsets else {
        return Ok(t);
    };
    if placed.is_empty() {
        return Ok(t);
    }
    let wide = box_range.fourcc == FourCC(*b"co64");
    let width = if wide { 8 } else { 4 };
    let base = (box_range.body_start() - track.trak.start) as usize + 8; // version/flags, entry count
    let count = t
        .get(base - 4..base)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize);
    if count != Some(track.samples.chunks().len()) {
        return Err(WriteError::Unsupported(format!(
            "{}: {count:?} entries but {} chunks",
            box_range.path,
            track.samples.chunks().len()
        )));
    }
    for (i, chunk) in track.samples.chunks().iter().enumerate() {
        let at = base + i * width;
        let field = t.get_mut(at..at + width).ok_or_else(|| {
            WriteError::Unsupported(format!(
                "{}: entry {} outside the box",
                box_range.path,
                i + 1
            ))
        })?;
        let Some(new) = map_offset(placed, chunk.offset) else {
            if chunk.sample_count == 0 {
                continue;
            }
            return Err(WriteError::Unsupported(format!(
                "track {}: chunk {} at offset {} lies outside every kept box",
                track.track_id,
                i + 1,
                chunk.offset
            )));
        };
        if wide {
            field.copy_from_slice(&new.to_be_bytes());
        } else {
            let v = u32::try_from(new).map_err(|_| {
                WriteError::Unsupported(format!(
                    "track {}: chunk offset {new} does not fit 'stco' (needs 'co64')",
                    track.track_id
                ))
            })?;
            field.copy_from_slice(&v.to_be_bytes());
        }
    }
    Ok(t)
}
