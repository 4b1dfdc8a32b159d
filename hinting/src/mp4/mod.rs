//! A reusable reader of the MP4 / QuickTime / 3GP movie structure.
//!
//! [`Movie::parse`] walks the top-level boxes, `ftyp`, `moov/mvhd`, every
//! `moov/trak` and `moov/udta/hnti/'rtp '` of a whole file held in memory
//! (normally a memory map) and returns a [`Movie`]: brands, movie timescale
//! and duration, the session-level SDP, the byte ranges of `moov`/`mdat`,
//! and one [`Track`] per `trak` with its [`SampleTable`]. It reads both ISO
//! base media files (ISO/IEC 14496-12; brands `isom`, `mp42`, `3gp4`, ...)
//! and QuickTime files (brand `qt  ` or no `ftyp`), with `moov` before or
//! after `mdat`, 32- or 64-bit box sizes, and size-0 ("to end of file") boxes.
//!
//! It knows nothing about RTP; the hint-specific parts live in
//! [`crate::rtp_entry`], [`crate::hint_sample`] and [`mod@crate::compile`].
//! Packetizers of plain files use [`Track::samples`] and the raw
//! [`SampleEntry`] byte ranges (for `avcC`, `hvcC`, `esds`).

pub mod boxes;
pub mod tables;
pub mod track;

pub use boxes::{BoxIter, BoxRange, BoxRef, Cursor, FourCC};
pub use tables::{Chunk, SampleInfo, SampleIter, SampleTable};
pub use track::{EditEntry, HintStats, SampleEntry, Track, TrackReference};

use crate::budget::{Budget, Meter};
use crate::error::HintError;
use boxes::child_path;

/// The structure of one movie file.
#[derive(Debug, Clone)]
pub struct Movie {
    /// Major brand from 'ftyp' (`None` for QuickTime files without 'ftyp').
    pub major_brand: Option<FourCC>,
    /// Minor version from 'ftyp'.
    pub minor_version: u32,
    /// Compatible brands from 'ftyp'.
    pub compatible_brands: Vec<FourCC>,
    /// Movie timescale, ticks per second ('mvhd'; never 0).
    pub timescale: u32,
    /// Movie duration in movie timescale ticks ('mvhd').
    pub duration: u64,
    /// Session-level SDP text from `moov/udta/hnti/'rtp '` (after its 4-byte
    /// description format 'sdp '), verbatim; Apple hinters write it.
    pub session_sdp: Option<String>,
    /// Every top-level box, in file order.
    pub top_level: Vec<BoxRange>,
    /// Where 'moov' lies.
    pub moov: BoxRange,
    /// Where each top-level 'mdat' lies.
    pub mdat: Vec<BoxRange>,
    /// Where `moov/udta` lies, if present.
    pub udta: Option<BoxRange>,
    /// One entry per `moov/trak`, in file order.
    pub tracks: Vec<Track>,
}

impl Movie {
    /// Parses the movie structure of a whole file. Every sample with a listed
    /// size must lie inside `data`; a file cut short fails with
    /// [`HintError::Truncated`] (top-level box) or [`HintError::BadSample`].
    ///
    /// Errors name the box path at fault. Allocations are bounded by the
    /// sizes of the boxes actually present and by the default [`Budget`]
    /// ([`HintError::OverBudget`] for more than 256 tracks, or tables
    /// larger than the budget's schedule bytes).
    pub fn parse(data: &[u8]) -> Result<Movie, HintError> {
        Self::parse_with(data, &Budget::default())
    }

    /// [`Movie::parse`] within `budget` (its track limit, and its schedule
    /// bytes for the sample tables and box lists).
    pub fn parse_with(data: &[u8], budget: &Budget) -> Result<Movie, HintError> {
        Self::parse_metered(data, &mut Meter::new(budget, data.len() as u64))
    }

    /// [`Movie::parse`], counting what it builds on `meter`.
    pub(crate) fn parse_metered(data: &[u8], meter: &mut Meter<'_>) -> Result<Movie, HintError> {
        let data_len = data.len() as u64;
        let mut top_level = Vec::new();
        let mut ftyp = None;
        let mut moov = None;
        let mut mdat = Vec::new();
        for b in BoxIter::new(data, 0, "") {
            let b = b?;
            let name = b.fourcc.to_string();
            let record = (size_of::<BoxRange>() + name.len()) as u64;
            match &b.fourcc.0 {
                b"ftyp" if ftyp.is_none() => ftyp = Some(b),
                b"moov" if moov.is_none() => moov = Some(b),
                b"mdat" => {
                    meter.bytes(record).map_err(|e| e.at("mdat", None))?;
                    mdat.push(b.range(name.clone()));
                }
                _ => {}
            }
            meter.bytes(record).map_err(|e| e.at(name.as_str(), None))?;
            top_level.push(b.range(name));
        }
        let (major_brand, minor_version, compatible_brands) = match &ftyp {
            Some(f) => {
                let mut c = Cursor::new(f.body, "ftyp");
                let major = c.fourcc()?;
                let minor = c.u32()?;
                let compat = c
                    .rest()
                    .chunks_exact(4)
                    .map(|b| FourCC([b[0], b[1], b[2], b[3]]))
                    .collect();
                (Some(major), minor, compat)
            }
            None => (None, 0, Vec::new()),
        };
        let moov = moov.ok_or_else(|| HintError::missing("moov"))?;
        let mut mvhd = None;
        let mut tracks = Vec::new();
        let mut udta = None;
        let mut session_sdp = None;
        for b in moov.children("moov", 0) {
            let b = b?;
            match &b.fourcc.0 {
                b"mvhd" => mvhd = Some(parse_time_header(b.body, "moov/mvhd")?),
                b"trak" => {
                    let ordinal = tracks.len() + 1;
                    meter
                        .tracks(ordinal as u64)
                        .map_err(|e| e.at(format!("moov/trak[{ordinal}]"), None))?;
                    meter
                        .bytes(size_of::<Track>() as u64)
                        .map_err(|e| e.at(format!("moov/trak[{ordinal}]"), None))?;
                    tracks.push(track::parse_track(&b, ordinal, data_len, meter)?);
                }
                b"udta" => {
                    session_sdp = parse_movie_udta(&b)?;
                    udta = Some(b.range("moov/udta"));
                }
                b"cmov" => {
                    return Err(HintError::invalid(
                        "moov/cmov",
                        "compressed movie headers are not supported",
                    ))
                }
                _ => {}
            }
        }
        let (timescale, duration) = mvhd.ok_or_else(|| HintError::missing("moov/mvhd"))?;
        Ok(Movie {
            major_brand,
            minor_version,
            compatible_brands,
            timescale,
            duration,
            session_sdp,
            top_level,
            moov: moov.range("moov"),
            mdat,
            udta,
            tracks,
        })
    }

    /// True for a QuickTime file (major brand 'qt  ', or no 'ftyp').
    pub fn is_quicktime(&self) -> bool {
        self.major_brand.is_none_or(|b| b == FourCC(*b"qt  "))
    }

    /// The track with ID `track_id`.
    pub fn track(&self, track_id: u32) -> Option<&Track> {
        self.tracks.iter().find(|t| t.track_id == track_id)
    }

    /// Movie duration in µs (saturating at `u64::MAX`).
    pub fn duration_us(&self) -> u64 {
        ticks_to_us(self.duration, self.timescale)
    }
}

/// `ticks` of a `timescale` Hz clock in µs, rounding down and saturating at
/// `u64::MAX` (a timescale of 0 counts as 1).
pub fn ticks_to_us(ticks: u64, timescale: u32) -> u64 {
    let us = u128::from(ticks) * 1_000_000 / u128::from(timescale.max(1));
    u64::try_from(us).unwrap_or(u64::MAX)
}

/// Timescale and duration of a movie or media header ('mvhd', 'mdhd': ISO/IEC
/// 14496-12 §8.2.2, §8.4.2), which share their layout up to the duration:
/// version and flags, creation and modification times (32 or 64 bits),
/// timescale (u32), duration (u32 or u64). `path` names the box in errors; a
/// timescale of 0 or an unknown version is an error.
pub(crate) fn parse_time_header(body: &[u8], path: &str) -> Result<(u32, u64), HintError> {
    let mut c = Cursor::new(body, path);
    let (version, _) = c.full_box()?;
    let (timescale, duration) = match version {
        0 => {
            c.skip(8)?;
            (c.u32()?, u64::from(c.u32()?))
        }
        1 => {
            c.skip(16)?;
            (c.u32()?, c.u64()?)
        }
        v => return Err(HintError::invalid(path, format!("unknown version {v}"))),
    };
    if timescale == 0 {
        return Err(HintError::invalid(path, "timescale is 0"));
    }
    Ok((timescale, duration))
}

fn parse_movie_udta(udta: &BoxRef<'_>) -> Result<Option<String>, HintError> {
    let path = "moov/udta";
    for b in udta.children(path, 0) {
        let b = b?;
        if b.fourcc != FourCC(*b"hnti") {
            continue;
        }
        let p = child_path(path, "hnti");
        for h in b.children(&p, 0) {
            let h = h?;
            if h.fourcc == FourCC(*b"rtp ") && h.body.get(..4) == Some(b"sdp ") {
                let t = &h.body[4..];
                let end = t.iter().rposition(|&x| x != 0).map_or(0, |e| e + 1);
                return Ok(Some(String::from_utf8_lossy(&t[..end]).into_owned()));
            }
        }
    }
    Ok(None)
}
