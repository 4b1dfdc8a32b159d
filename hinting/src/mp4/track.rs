//! One `trak` box: header (`tkhd`), edit list (`edts/elst`), references
//! (`tref`), media header and handler (`mdia/mdhd`, `mdia/hdlr`), data
//! references (`minf/dinf/dref`), sample descriptions and tables
//! (`minf/stbl`), and the hint-track user data (`udta/hnti/'sdp '`,
//! `udta/hinf`).
//!
//! Sources: ISO/IEC 14496-12 §8.3–8.7, and the QuickTime File Format's
//! "Hint media" section for `hnti`/`hinf` (QuickTime files use a `gmhd`
//! media header in hint tracks where ISO files use `hmhd`; neither is needed
//! here).

use std::ops::Range;

use crate::budget::Meter;
use crate::error::HintError;
use crate::mp4::boxes::{child_path, BoxRange, BoxRef, Cursor, FourCC};
use crate::mp4::tables::{RawTables, SampleTable};

/// One edit ('elst' entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EditEntry {
    /// Duration of the edit in the movie timescale ('mvhd').
    pub segment_duration: u64,
    /// Start of the edit in media time (media timescale), or -1 for an empty
    /// edit (a gap in the presentation).
    pub media_time: i64,
    /// Playback rate, 16.16 fixed point (0x0001_0000 = 1.0).
    pub media_rate: i32,
}

/// One 'tref' child: a reference type and the referenced track IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackReference {
    /// Reference type, e.g. 'hint', 'cdsc', 'chap'.
    pub kind: FourCC,
    /// Referenced track IDs, in order (a hint constructor's track reference
    /// index `i` names `track_ids[i]`).
    pub track_ids: Vec<u32>,
}

/// One sample description ('stsd' entry), kept raw so that codec-specific
/// readers can parse it (`avcC`, `hvcC`, `esds`, 'rtp ' / 'tims', ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleEntry {
    /// Sample entry format, e.g. 'avc1', 'mp4a', 'rtp ', 'SVQ3'.
    pub fourcc: FourCC,
    /// Absolute byte range of the whole entry, including its 8-byte
    /// size/format header (the range a sample-description constructor's
    /// offset counts from).
    pub range: Range<u64>,
    /// 1-based 'dref' index of the entry's data.
    pub data_reference_index: u16,
}

/// Statistics an Apple hinter stores in a hint track's `udta/hinf`
/// (QuickTime File Format, "Hint track user data atom"). All optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HintStats {
    /// Packets sent ('nump', or the 32-bit 'npck').
    pub packets: Option<u64>,
    /// Payload bytes, RTP headers excluded ('tpyl', or the 32-bit 'tpay').
    pub payload_bytes: Option<u64>,
    /// Bytes including 12-byte RTP headers ('trpy', or the 32-bit 'totl').
    pub total_bytes: Option<u64>,
    /// Bytes sent from media tracks ('dmed').
    pub media_bytes: Option<u64>,
    /// Immediate bytes ('dimm').
    pub immediate_bytes: Option<u64>,
    /// Repeated bytes ('drep').
    pub repeated_bytes: Option<u64>,
    /// Smallest relative transmission time, hint timescale ('tmin').
    pub min_relative_time: Option<i32>,
    /// Largest relative transmission time, hint timescale ('tmax').
    pub max_relative_time: Option<i32>,
    /// Largest packet including its RTP header, bytes ('pmax').
    pub max_packet_size: Option<u32>,
    /// Longest packet duration, ms ('dmax').
    pub max_packet_duration_ms: Option<u32>,
    /// Peak data rates: (period in ms, bytes in that period) ('maxr').
    pub max_rates: Vec<(u32, u32)>,
    /// Payload types: (number, rtpmap string) ('payt').
    pub payload_types: Vec<(u32, String)>,
}

/// One track of a movie, with everything needed to read its samples.
#[derive(Debug, Clone)]
pub struct Track {
    /// 1-based position of the `trak` box in `moov` (as in box paths).
    pub ordinal: usize,
    /// Where the `trak` box lies.
    pub trak: BoxRange,
    /// Track ID ('tkhd').
    pub track_id: u32,
    /// 'tkhd' flags (1 enabled, 2 in movie, 4 in preview).
    pub tkhd_flags: u32,
    /// Handler type ('hdlr' in 'mdia'): 'vide', 'soun', 'hint', ...
    pub handler: FourCC,
    /// Media timescale, ticks per second ('mdhd'; never 0).
    pub timescale: u32,
    /// Media duration in media timescale ticks ('mdhd').
    pub duration: u64,
    /// Edit list ('edts/elst'), empty when absent.
    pub edits: Vec<EditEntry>,
    /// Track IDs of the 'tref'/'hint' reference, empty when absent.
    pub hint_refs: Vec<u32>,
    /// All 'tref' children.
    pub references: Vec<TrackReference>,
    /// Sample descriptions ('stsd' entries), in order (index 1 first).
    pub sample_entries: Vec<SampleEntry>,
    /// Track-level SDP from `udta/hnti/'sdp '`, verbatim.
    pub sdp: Option<String>,
    /// Hinter statistics from `udta/hinf`.
    pub hint_stats: Option<HintStats>,
    /// False when a 'dref' entry points to another file (flag 1 clear).
    pub self_contained: bool,
    /// Per-sample lookups.
    pub samples: SampleTable,
    /// Where `mdia/minf/stbl` lies.
    pub stbl: BoxRange,
    /// Where the chunk offset box ('stco' or 'co64') lies.
    pub chunk_offsets: Option<BoxRange>,
    /// Where the track's `udta` lies, if present.
    pub udta: Option<BoxRange>,
}

impl Track {
    /// True for a hint track (handler 'hint').
    pub fn is_hint(&self) -> bool {
        self.handler == FourCC(*b"hint")
    }

    /// Converts media timescale ticks to µs (rounding down, saturating at
    /// `u64::MAX`).
    pub fn ticks_to_us(&self, ticks: u64) -> u64 {
        crate::mp4::ticks_to_us(ticks, self.timescale)
    }

    /// Media duration in µs.
    pub fn duration_us(&self) -> u64 {
        self.ticks_to_us(self.duration)
    }

    /// The sample entry with 1-based `index`.
    pub fn sample_entry(&self, index: u32) -> Option<&SampleEntry> {
        self.sample_entries.get((index as usize).checked_sub(1)?)
    }
}

fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Parses one `trak` (the `ordinal`-th in `moov`). `data_len` bounds sample
/// offsets; what is built from the track's boxes is counted on `meter`.
pub(crate) fn parse_track(
    trak: &BoxRef<'_>,
    ordinal: usize,
    data_len: u64,
    meter: &mut Meter<'_>,
) -> Result<Track, HintError> {
    let path = format!("moov/trak[{ordinal}]");
    let mut tkhd = None;
    let mut edits = Vec::new();
    let mut references = Vec::new();
    let mut mdia = None;
    let mut udta = None;
    for b in trak.children(&path, 0) {
        let b = b?;
        match &b.fourcc.0 {
            b"tkhd" => tkhd = Some(parse_tkhd(&b, &child_path(&path, "tkhd"))?),
            b"edts" => {
                let p = child_path(&path, "edts");
                for e in b.children(&p, 0) {
                    let e = e?;
                    if e.fourcc == FourCC(*b"elst") {
                        edits = parse_elst(e.body, &child_path(&p, "elst"), meter)?;
                    }
                }
            }
            b"tref" => {
                let p = child_path(&path, "tref");
                for r in b.children(&p, 0) {
                    let r = r?;
                    // The 'hint' list is kept twice (`hint_refs`).
                    let record = size_of::<TrackReference>() + 2 * r.body.len();
                    meter
                        .bytes(record as u64)
                        .map_err(|e| e.at(child_path(&p, r.fourcc), None))?;
                    let ids = r
                        .body
                        .chunks_exact(4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                    references.push(TrackReference {
                        kind: r.fourcc,
                        track_ids: ids.collect(),
                    });
                }
            }
            b"mdia" => mdia = Some(b),
            b"udta" => udta = Some(b),
            _ => {}
        }
    }
    let (track_id, tkhd_flags) =
        tkhd.ok_or_else(|| HintError::missing(child_path(&path, "tkhd")))?;
    let mdia = mdia.ok_or_else(|| HintError::missing(child_path(&path, "mdia")))?;
    let media = parse_mdia(&mdia, &child_path(&path, "mdia"), track_id, data_len, meter)?;
    let (sdp, hint_stats, udta_range) = match &udta {
        Some(u) => {
            let p = child_path(&path, "udta");
            let (sdp, stats) = parse_track_udta(u, &p)?;
            (sdp, stats, Some(u.range(p)))
        }
        None => (None, None, None),
    };
    let hint_refs = references
        .iter()
        .find(|r| r.kind == FourCC(*b"hint"))
        .map(|r| r.track_ids.clone())
        .unwrap_or_default();
    Ok(Track {
        ordinal,
        trak: trak.range(path),
        track_id,
        tkhd_flags,
        handler: media.handler,
        timescale: media.timescale,
        duration: media.duration,
        edits,
        hint_refs,
        references,
        sample_entries: media.sample_entries,
        sdp,
        hint_stats,
        self_contained: media.self_contained,
        samples: media.samples,
        stbl: media.stbl,
        chunk_offsets: media.chunk_offsets,
        udta: udta_range,
    })
}

fn parse_tkhd(b: &BoxRef<'_>, path: &str) -> Result<(u32, u32), HintError> {
    let mut c = Cursor::new(b.body, path);
    let (version, flags) = c.full_box()?;
    match version {
        0 => c.skip(8)?,
        1 => c.skip(16)?,
        v => return Err(HintError::invalid(path, format!("unknown version {v}"))),
    }
    Ok((c.u32()?, flags))
}

fn parse_elst(body: &[u8], path: &str, meter: &mut Meter<'_>) -> Result<Vec<EditEntry>, HintError> {
    let mut c = Cursor::new(body, path);
    let (version, _) = c.full_box()?;
    let n = c.u32()?;
    let entry = match version {
        0 => 12,
        1 => 20,
        v => return Err(HintError::invalid(path, format!("unknown version {v}"))),
    };
    c.require(u64::from(n), entry)?;
    meter
        .records(u64::from(n), size_of::<EditEntry>())
        .map_err(|e| e.at(path, None))?;
    let mut v = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (segment_duration, media_time) = if version == 1 {
            (c.u64()?, c.i64()?)
        } else {
            (u64::from(c.u32()?), i64::from(c.i32()?))
        };
        v.push(EditEntry {
            segment_duration,
            media_time,
            media_rate: c.i32()?,
        });
    }
    Ok(v)
}

struct Media {
    handler: FourCC,
    timescale: u32,
    duration: u64,
    sample_entries: Vec<SampleEntry>,
    self_contained: bool,
    samples: SampleTable,
    stbl: BoxRange,
    chunk_offsets: Option<BoxRange>,
}

fn parse_mdia(
    mdia: &BoxRef<'_>,
    path: &str,
    track_id: u32,
    data_len: u64,
    meter: &mut Meter<'_>,
) -> Result<Media, HintError> {
    let mut mdhd = None;
    let mut handler = None;
    let mut minf = None;
    for b in mdia.children(path, 0) {
        let b = b?;
        match &b.fourcc.0 {
            b"mdhd" => {
                let p = child_path(path, "mdhd");
                mdhd = Some(crate::mp4::parse_time_header(b.body, &p)?);
            }
            b"hdlr" => {
                let p = child_path(path, "hdlr");
                let mut c = Cursor::new(b.body, &p);
                c.full_box()?;
                c.skip(4)?;
                handler = Some(c.fourcc()?);
            }
            b"minf" => minf = Some(b),
            _ => {}
        }
    }
    let (timescale, duration) = mdhd.ok_or_else(|| HintError::missing(child_path(path, "mdhd")))?;
    let handler = handler.ok_or_else(|| HintError::missing(child_path(path, "hdlr")))?;
    let minf_path = child_path(path, "minf");
    let minf = minf.ok_or_else(|| HintError::missing(minf_path.clone()))?;
    let mut self_contained = true;
    let mut stbl = None;
    for b in minf.children(&minf_path, 0) {
        let b = b?;
        match &b.fourcc.0 {
            b"dinf" => self_contained = parse_dinf(&b, &child_path(&minf_path, "dinf"))?,
            b"stbl" => stbl = Some(b),
            _ => {}
        }
    }
    let stbl_path = child_path(&minf_path, "stbl");
    let stbl = stbl.ok_or_else(|| HintError::missing(stbl_path.clone()))?;
    let mut raw = RawTables::default();
    let mut sample_entries = None;
    let mut chunk_offsets = None;
    for b in stbl.children(&stbl_path, 0) {
        let b = b?;
        let p = child_path(&stbl_path, b.fourcc);
        let slot = match &b.fourcc.0 {
            b"stsd" => {
                sample_entries = Some(parse_stsd(&b, &p, meter)?);
                continue;
            }
            b"stts" => &mut raw.stts,
            b"ctts" => &mut raw.ctts,
            b"stss" => &mut raw.stss,
            b"stsc" => &mut raw.stsc,
            b"stsz" => &mut raw.stsz,
            b"stz2" => &mut raw.stz2,
            b"stco" | b"co64" => {
                chunk_offsets = Some(b.range(p.clone()));
                if b.fourcc == FourCC(*b"stco") {
                    &mut raw.stco
                } else {
                    &mut raw.co64
                }
            }
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some((b.body, p));
        }
    }
    let sample_entries =
        sample_entries.ok_or_else(|| HintError::missing(child_path(&stbl_path, "stsd")))?;
    let samples = SampleTable::build(&raw, track_id, &stbl_path, data_len, meter)?;
    Ok(Media {
        handler,
        timescale,
        duration,
        sample_entries,
        self_contained,
        samples,
        stbl: stbl.range(stbl_path),
        chunk_offsets,
    })
}

fn parse_dinf(dinf: &BoxRef<'_>, path: &str) -> Result<bool, HintError> {
    let mut self_contained = true;
    for b in dinf.children(path, 0) {
        let b = b?;
        if b.fourcc != FourCC(*b"dref") {
            continue;
        }
        let p = child_path(path, "dref");
        for e in b.children(&p, 8) {
            let e = e?;
            let ep = child_path(&p, e.fourcc);
            let (_, flags) = Cursor::new(e.body, &ep).full_box()?;
            if flags & 1 == 0 {
                self_contained = false;
            }
        }
    }
    Ok(self_contained)
}

fn parse_stsd(
    stsd: &BoxRef<'_>,
    path: &str,
    meter: &mut Meter<'_>,
) -> Result<Vec<SampleEntry>, HintError> {
    let mut c = Cursor::new(stsd.body, path);
    c.full_box()?;
    let n = c.u32()?;
    let mut entries = Vec::new();
    for e in stsd.children(path, 8) {
        let e = e?;
        if entries.len() as u32 == n {
            break;
        }
        let p = child_path(path, e.fourcc);
        meter
            .bytes(size_of::<SampleEntry>() as u64)
            .map_err(|e| e.at(p.as_str(), None))?;
        let mut ec = Cursor::new(e.body, &p);
        ec.skip(6)?;
        entries.push(SampleEntry {
            fourcc: e.fourcc,
            range: e.start..e.end(),
            data_reference_index: ec.u16()?,
        });
    }
    if (entries.len() as u32) < n {
        return Err(HintError::invalid(
            path,
            format!("declares {n} sample entries but holds {}", entries.len()),
        ));
    }
    Ok(entries)
}

fn parse_track_udta(
    udta: &BoxRef<'_>,
    path: &str,
) -> Result<(Option<String>, Option<HintStats>), HintError> {
    let mut sdp = None;
    let mut stats = None;
    for b in udta.children(path, 0) {
        let b = b?;
        match &b.fourcc.0 {
            b"hnti" => {
                let p = child_path(path, "hnti");
                for h in b.children(&p, 0) {
                    let h = h?;
                    if h.fourcc == FourCC(*b"sdp ") && sdp.is_none() {
                        sdp = Some(text(h.body));
                    }
                }
            }
            b"hinf" => stats = Some(parse_hinf(&b, &child_path(path, "hinf"))?),
            _ => {}
        }
    }
    Ok((sdp, stats))
}

fn parse_hinf(hinf: &BoxRef<'_>, path: &str) -> Result<HintStats, HintError> {
    let mut s = HintStats::default();
    let mut npck = None;
    let mut tpay = None;
    let mut totl = None;
    for b in hinf.children(path, 0) {
        let b = b?;
        let p = child_path(path, b.fourcc);
        let mut c = Cursor::new(b.body, &p);
        match &b.fourcc.0 {
            b"nump" => s.packets = Some(c.u64()?),
            b"npck" => npck = Some(u64::from(c.u32()?)),
            b"tpyl" => s.payload_bytes = Some(c.u64()?),
            b"tpay" => tpay = Some(u64::from(c.u32()?)),
            b"trpy" => s.total_bytes = Some(c.u64()?),
            b"totl" => totl = Some(u64::from(c.u32()?)),
            b"dmed" => s.media_bytes = Some(c.u64()?),
            b"dimm" => s.immediate_bytes = Some(c.u64()?),
            b"drep" => s.repeated_bytes = Some(c.u64()?),
            b"tmin" => s.min_relative_time = Some(c.i32()?),
            b"tmax" => s.max_relative_time = Some(c.i32()?),
            b"pmax" => s.max_packet_size = Some(c.u32()?),
            b"dmax" => s.max_packet_duration_ms = Some(c.u32()?),
            b"maxr" => s.max_rates.push((c.u32()?, c.u32()?)),
            b"payt" => {
                let pt = c.u32()?;
                let len = c.u8()?;
                let name = c.bytes(usize::from(len).min(c.remaining()))?;
                s.payload_types.push((pt, text(name)));
            }
            _ => {}
        }
    }
    s.packets = s.packets.or(npck);
    s.payload_bytes = s.payload_bytes.or(tpay);
    s.total_bytes = s.total_bytes.or(totl);
    Ok(s)
}
