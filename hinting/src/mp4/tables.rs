//! Sample tables (ISO/IEC 14496-12 §8.6–8.7): `stts`, `ctts`, `stss`, `stsc`,
//! `stsz`/`stz2` and `stco`/`co64`, compiled into a [`SampleTable`] that
//! answers per-sample questions (file offset, size, decode time, composition
//! offset, sync) in O(1) or O(log n).
//!
//! Layout in memory: per-sample sizes and absolute offsets are precomputed
//! into `Vec`s when `stsz` lists sizes (their length is then bounded by the
//! `stsz` box's real size); tracks with a constant sample size (QuickTime
//! sound, where "samples" are PCM frames and may number millions) keep only
//! the chunk table and compute offsets on demand. Time tables stay
//! run-length encoded and are searched by binary search (or walked in O(1)
//! per step by [`SampleIter`]). Nothing is allocated from a declared count
//! before the box has been checked to hold that many entries.

use crate::budget::Meter;
use crate::error::HintError;
use crate::mp4::boxes::Cursor;

/// One chunk (run of contiguous samples) from `stco`/`co64` + `stsc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Absolute file offset of the chunk's first byte.
    pub offset: u64,
    /// 0-based index of the chunk's first sample.
    pub first_sample: u32,
    /// Samples in this chunk (0 for chunks past the last sample).
    pub sample_count: u32,
    /// 1-based sample description ('stsd' entry) index of the chunk.
    pub description_index: u32,
}

/// Everything known about one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleInfo {
    /// Absolute file offset of the sample's first byte.
    pub offset: u64,
    /// Size in bytes ('stsz'). For QuickTime sound with a constant size of 1
    /// this is a nominal per-PCM-frame size, not the compressed size.
    pub size: u32,
    /// Decode time in the track's media timescale ('stts' cumulative).
    pub decode_time: u64,
    /// Duration in media timescale ticks ('stts' delta).
    pub duration: u32,
    /// Composition time minus decode time, media timescale ('ctts'; 0 without it).
    pub composition_offset: i32,
    /// Sync (random access) sample: listed in 'stss', or every sample when
    /// the track has no 'stss'.
    pub sync: bool,
    /// 1-based 'stsd' entry index of the sample's chunk ('stsc').
    pub description_index: u32,
}

#[derive(Debug, Clone, Copy)]
struct TimeRun {
    first_sample: u32,
    count: u32,
    first_time: u64,
    delta: u32,
}

impl TimeRun {
    /// Decode time of sample `index` of this run (`None` outside it, or past
    /// 2^64 ticks, which 'stts' parsing already refuses).
    fn time_of(&self, index: u32) -> Option<u64> {
        let k = index.checked_sub(self.first_sample)?;
        self.first_time
            .checked_add(u64::from(k).checked_mul(u64::from(self.delta))?)
    }
}

#[derive(Debug, Clone, Copy)]
struct OffsetRun {
    first_sample: u32,
    count: u32,
    offset: i32,
}

/// The raw sample-table boxes of one `stbl`, each as (payload, box path).
#[derive(Debug, Default, Clone)]
pub(crate) struct RawTables<'a> {
    pub stts: Option<(&'a [u8], String)>,
    pub ctts: Option<(&'a [u8], String)>,
    pub stss: Option<(&'a [u8], String)>,
    pub stsc: Option<(&'a [u8], String)>,
    pub stsz: Option<(&'a [u8], String)>,
    pub stz2: Option<(&'a [u8], String)>,
    pub stco: Option<(&'a [u8], String)>,
    pub co64: Option<(&'a [u8], String)>,
}

/// Per-sample lookups for one track. Sample indices are 0-based
/// (sample number − 1).
#[derive(Debug, Clone, Default)]
pub struct SampleTable {
    count: u32,
    /// Constant sample size, or 0 when `sizes` holds one size per sample.
    constant_size: u32,
    sizes: Vec<u32>,
    /// Absolute offset per sample (empty with a constant size).
    offsets: Vec<u64>,
    chunks: Vec<Chunk>,
    times: Vec<TimeRun>,
    ctts: Vec<OffsetRun>,
    /// Sorted 0-based sync sample indices; `None` when every sample is sync.
    sync: Option<Vec<u32>>,
    total_duration: u64,
}

fn run_index(first_and_count: impl Fn(usize) -> (u32, u32), len: usize, i: u32) -> usize {
    // First run whose end lies beyond `i`.
    let (mut lo, mut hi) = (0usize, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let (first, count) = first_and_count(mid);
        if u64::from(first) + u64::from(count) <= u64::from(i) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

impl SampleTable {
    /// Number of samples ('stsz'/'stz2' sample count).
    pub fn len(&self) -> u32 {
        self.count
    }

    /// True when the track has no samples.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The constant sample size when 'stsz' declares one, else `None`.
    pub fn constant_size(&self) -> Option<u32> {
        (self.constant_size != 0).then_some(self.constant_size)
    }

    /// The chunk table, in 'stco'/'co64' order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Sorted 0-based indices of the sync samples ('stss'), or `None` when
    /// the track has no 'stss' (every sample is a sync sample).
    pub fn sync_samples(&self) -> Option<&[u32]> {
        self.sync.as_deref()
    }

    /// Sum of all sample durations ('stts'), media timescale ticks.
    pub fn total_duration(&self) -> u64 {
        self.total_duration
    }

    /// Index into [`Self::chunks`] of the chunk holding sample `index`.
    pub fn chunk_index_of(&self, index: u32) -> Option<usize> {
        if index >= self.count {
            return None;
        }
        let c = &self.chunks;
        let k = run_index(|m| (c[m].first_sample, c[m].sample_count), c.len(), index);
        (k < c.len()).then_some(k)
    }

    /// Size in bytes of sample `index`.
    pub fn size(&self, index: u32) -> Option<u32> {
        if index >= self.count {
            None
        } else if self.constant_size != 0 {
            Some(self.constant_size)
        } else {
            self.sizes.get(index as usize).copied()
        }
    }

    /// Absolute file offset of sample `index`.
    pub fn offset(&self, index: u32) -> Option<u64> {
        if index >= self.count {
            return None;
        }
        if self.constant_size == 0 {
            return self.offsets.get(index as usize).copied();
        }
        let chunk = self.chunks.get(self.chunk_index_of(index)?)?;
        let within =
            u64::from(index.checked_sub(chunk.first_sample)?) * u64::from(self.constant_size);
        chunk.offset.checked_add(within)
    }

    fn time_run(&self, index: u32) -> Option<&TimeRun> {
        let t = &self.times;
        self.times.get(run_index(
            |m| (t[m].first_sample, t[m].count),
            t.len(),
            index,
        ))
    }

    /// Decode time of sample `index` in media timescale ticks.
    pub fn decode_time(&self, index: u32) -> Option<u64> {
        if index >= self.count {
            return None;
        }
        self.time_run(index)?.time_of(index)
    }

    /// Duration ('stts' delta) of sample `index`.
    pub fn duration(&self, index: u32) -> Option<u32> {
        if index >= self.count {
            return None;
        }
        self.time_run(index).map(|r| r.delta)
    }

    /// Composition offset ('ctts') of sample `index`; 0 without 'ctts'.
    pub fn composition_offset(&self, index: u32) -> i32 {
        let c = &self.ctts;
        let k = run_index(|m| (c[m].first_sample, c[m].count), c.len(), index);
        c.get(k).map_or(0, |r| r.offset)
    }

    /// True when sample `index` is a sync sample.
    pub fn is_sync(&self, index: u32) -> bool {
        match &self.sync {
            None => index < self.count,
            Some(s) => s.binary_search(&index).is_ok(),
        }
    }

    /// 1-based 'stsd' entry index of sample `index`.
    pub fn description_index(&self, index: u32) -> Option<u32> {
        Some(
            self.chunks
                .get(self.chunk_index_of(index)?)?
                .description_index,
        )
    }

    /// Everything about sample `index` (0-based), or `None` past the end.
    pub fn sample(&self, index: u32) -> Option<SampleInfo> {
        if index >= self.count {
            return None;
        }
        let r = self.time_run(index)?;
        Some(SampleInfo {
            offset: self.offset(index)?,
            size: self.size(index)?,
            decode_time: r.time_of(index)?,
            duration: r.delta,
            composition_offset: self.composition_offset(index),
            sync: self.is_sync(index),
            description_index: self.description_index(index)?,
        })
    }

    /// Index of the first sample whose decode time is at or after `time`
    /// (media timescale); [`Self::len`] when there is none.
    pub fn first_at_or_after(&self, time: u64) -> u32 {
        let t = &self.times;
        let k =
            t.partition_point(|r| r.first_time + u64::from(r.count) * u64::from(r.delta) <= time);
        let Some(r) = t.get(k) else {
            return self.count;
        };
        if r.first_time >= time || r.delta == 0 {
            return r.first_sample;
        }
        let steps = (time - r.first_time).div_ceil(u64::from(r.delta));
        (u64::from(r.first_sample) + steps).min(u64::from(self.count)) as u32
    }

    /// The sync sample at or before `index` (the seek point for a decode
    /// starting at `index`); `None` when there is none.
    pub fn sync_at_or_before(&self, index: u32) -> Option<u32> {
        if index >= self.count {
            return None;
        }
        match &self.sync {
            None => Some(index),
            Some(s) => {
                let k = s.partition_point(|&x| x <= index);
                k.checked_sub(1).map(|k| s[k])
            }
        }
    }

    /// Iterates all samples in order; O(1) per step.
    pub fn iter(&self) -> SampleIter<'_> {
        SampleIter {
            table: self,
            index: 0,
            chunk: 0,
            in_chunk_offset: 0,
            time_run: 0,
            time: self.times.first().map_or(0, |r| r.first_time),
            ctts_run: 0,
            sync_pos: 0,
        }
    }

    /// Builds the table from the raw boxes. `data_len` is the file length:
    /// every sample with a listed size must lie inside the file. The tables'
    /// memory is counted on `meter` before it is allocated.
    pub(crate) fn build(
        raw: &RawTables<'_>,
        track: u32,
        stbl_path: &str,
        data_len: u64,
        meter: &mut Meter<'_>,
    ) -> Result<Self, HintError> {
        let (count, constant_size, sizes) = parse_sizes(raw, stbl_path, track, meter)?;
        let chunk_offsets = parse_chunk_offsets(raw, stbl_path, track, meter)?;
        let chunks = build_chunks(raw, stbl_path, &chunk_offsets, count, track, meter)?;
        meter.release(chunk_offsets.len() as u64 * 8);
        drop(chunk_offsets);
        let mut offsets = Vec::new();
        if constant_size == 0 {
            // One offset per listed size; `sizes` holds `count` entries.
            meter
                .records(u64::from(count), size_of::<u64>())
                .map_err(|e| e.at(format!("{stbl_path}/stsz"), Some(track)))?;
            offsets.reserve_exact(sizes.len());
            for c in &chunks {
                let mut pos = c.offset;
                // first_sample + sample_count <= count (build_chunks).
                for i in c.first_sample..c.first_sample.saturating_add(c.sample_count) {
                    let size = u64::from(sizes.get(i as usize).copied().unwrap_or(0));
                    let end = pos.checked_add(size).filter(|&e| e <= data_len);
                    let Some(end) = end else {
                        return Err(HintError::BadSample {
                            track,
                            sample: i + 1,
                            reason: format!(
                                "bytes {pos}..{} lie outside the file ({data_len} bytes)",
                                pos.saturating_add(size)
                            ),
                        });
                    };
                    offsets.push(pos);
                    pos = end;
                }
            }
        } else {
            for c in chunks.iter().filter(|c| c.sample_count > 0) {
                // QuickTime sound declares a nominal size of 1 per PCM frame;
                // only the chunk start is meaningful there.
                let span = if constant_size > 1 {
                    u64::from(c.sample_count) * u64::from(constant_size)
                } else {
                    0
                };
                if c.offset.checked_add(span).is_none_or(|e| e > data_len) {
                    return Err(HintError::BadSample {
                        track,
                        sample: c.first_sample + 1,
                        reason: format!(
                            "chunk at {} of {span} bytes lies outside the file ({data_len} bytes)",
                            c.offset
                        ),
                    });
                }
            }
        }
        let (times, total_duration) = parse_stts(raw, stbl_path, count, track, meter)?;
        let ctts = parse_ctts(raw, count, track, meter)?;
        let sync = parse_stss(raw, count, track, meter)?;
        Ok(SampleTable {
            count,
            constant_size,
            sizes,
            offsets,
            chunks,
            times,
            ctts,
            sync,
            total_duration,
        })
    }
}

fn parse_sizes(
    raw: &RawTables<'_>,
    stbl_path: &str,
    track: u32,
    meter: &mut Meter<'_>,
) -> Result<(u32, u32, Vec<u32>), HintError> {
    if let Some((body, path)) = &raw.stsz {
        let mut c = Cursor::new(body, path);
        c.full_box()?;
        let size = c.u32()?;
        let count = c.u32()?;
        if size != 0 {
            return Ok((count, size, Vec::new()));
        }
        c.require(u64::from(count), 4)?;
        meter
            .records(u64::from(count), size_of::<u32>())
            .map_err(|e| e.at(path.as_str(), Some(track)))?;
        let mut sizes = Vec::with_capacity(count as usize);
        for _ in 0..count {
            sizes.push(c.u32()?);
        }
        return Ok((count, 0, sizes));
    }
    if let Some((body, path)) = &raw.stz2 {
        let mut c = Cursor::new(body, path);
        c.full_box()?;
        c.skip(3)?;
        let field = c.u8()?;
        let count = c.u32()?;
        let bits = u64::from(field);
        if !matches!(field, 4 | 8 | 16) {
            return Err(HintError::invalid(
                path.as_str(),
                format!("field size {field} is not 4, 8 or 16"),
            ));
        }
        c.require((u64::from(count) * bits).div_ceil(8), 1)?;
        meter
            .records(u64::from(count), size_of::<u32>())
            .map_err(|e| e.at(path.as_str(), Some(track)))?;
        let data = c.rest();
        let mut sizes = Vec::with_capacity(count as usize);
        let byte = |i: usize| data.get(i).copied().ok_or_else(|| c.truncated(1));
        for i in 0..count as usize {
            let v = match field {
                4 => {
                    let b = byte(i / 2)?;
                    if i % 2 == 0 { b >> 4 } else { b & 0x0f }.into()
                }
                8 => byte(i)?.into(),
                _ => u16::from_be_bytes([byte(2 * i)?, byte(2 * i + 1)?]).into(),
            };
            sizes.push(v);
        }
        return Ok((count, 0, sizes));
    }
    Err(HintError::missing(format!("{stbl_path}/stsz")))
}

fn parse_chunk_offsets(
    raw: &RawTables<'_>,
    stbl_path: &str,
    track: u32,
    meter: &mut Meter<'_>,
) -> Result<Vec<u64>, HintError> {
    let (body, path, wide) = match (&raw.stco, &raw.co64) {
        (Some((b, p)), _) => (*b, p, false),
        (None, Some((b, p))) => (*b, p, true),
        (None, None) => return Err(HintError::missing(format!("{stbl_path}/stco"))),
    };
    let mut c = Cursor::new(body, path);
    c.full_box()?;
    let n = c.u32()?;
    c.require(u64::from(n), if wide { 8 } else { 4 })?;
    meter
        .records(u64::from(n), size_of::<u64>())
        .map_err(|e| e.at(path.as_str(), Some(track)))?;
    let mut v = Vec::with_capacity(n as usize);
    for _ in 0..n {
        v.push(if wide { c.u64()? } else { u64::from(c.u32()?) });
    }
    Ok(v)
}

fn build_chunks(
    raw: &RawTables<'_>,
    stbl_path: &str,
    offsets: &[u64],
    count: u32,
    track: u32,
    meter: &mut Meter<'_>,
) -> Result<Vec<Chunk>, HintError> {
    let Some((body, path)) = &raw.stsc else {
        if count == 0 {
            return Ok(Vec::new());
        }
        return Err(HintError::missing(format!("{stbl_path}/stsc")));
    };
    let mut c = Cursor::new(body, path);
    c.full_box()?;
    let n = c.u32()?;
    c.require(u64::from(n), 12)?;
    let transient = u64::from(n) * size_of::<(u32, u32, u32)>() as u64;
    meter
        .bytes(transient)
        .map_err(|e| e.at(path.as_str(), Some(track)))?;
    let mut entries: Vec<(u32, u32, u32)> = Vec::with_capacity(n as usize);
    for k in 0..n {
        let first = c.u32()?;
        let spc = c.u32()?;
        let sdi = c.u32()?;
        let ok = match entries.last() {
            None => first == 1,
            Some(&(prev, _, _)) => first > prev,
        };
        if !ok {
            return Err(HintError::invalid(
                path.as_str(),
                format!(
                    "entry {} has first chunk {first}, not increasing from 1",
                    k + 1
                ),
            ));
        }
        entries.push((first, spc, sdi));
    }
    meter
        .records(offsets.len() as u64, size_of::<Chunk>())
        .map_err(|e| e.at(format!("{stbl_path}/stco"), Some(track)))?;
    let mut chunks = Vec::with_capacity(offsets.len());
    let mut run = 0usize;
    let mut next_sample: u64 = 0;
    for (ci, &offset) in offsets.iter().enumerate() {
        let chunk_no = ci as u64 + 1;
        while run + 1 < entries.len() && u64::from(entries[run + 1].0) <= chunk_no {
            run += 1;
        }
        let (spc, sdi) = entries.get(run).map_or((0, 1), |e| (e.1, e.2));
        let first = next_sample.min(u64::from(count));
        let in_chunk = (u64::from(spc)).min(u64::from(count) - first);
        chunks.push(Chunk {
            offset,
            first_sample: first as u32,
            sample_count: in_chunk as u32,
            description_index: sdi,
        });
        next_sample = next_sample.saturating_add(u64::from(spc));
    }
    meter.release(transient);
    if next_sample < u64::from(count) {
        return Err(HintError::BadSample {
            track,
            sample: next_sample as u32 + 1,
            reason: format!(
                "not in any chunk: stsc/stco describe {next_sample} of {count} samples ({stbl_path})"
            ),
        });
    }
    Ok(chunks)
}

fn parse_stts(
    raw: &RawTables<'_>,
    stbl_path: &str,
    count: u32,
    track: u32,
    meter: &mut Meter<'_>,
) -> Result<(Vec<TimeRun>, u64), HintError> {
    let mut runs: Vec<TimeRun> = Vec::new();
    let mut covered: u64 = 0;
    let mut time: u64 = 0;
    if let Some((body, path)) = &raw.stts {
        let mut c = Cursor::new(body, path);
        c.full_box()?;
        let n = c.u32()?;
        c.require(u64::from(n), 8)?;
        // At most one run per entry, plus the filler run below.
        meter
            .records(u64::from(n) + 1, size_of::<TimeRun>())
            .map_err(|e| e.at(path.as_str(), Some(track)))?;
        for _ in 0..n {
            let k = c.u32()?;
            let delta = c.u32()?;
            if covered >= u64::from(count) {
                break;
            }
            let k = u64::from(k).min(u64::from(count) - covered);
            if k == 0 {
                continue;
            }
            runs.push(TimeRun {
                first_sample: covered as u32,
                count: k as u32,
                first_time: time,
                delta,
            });
            covered += k;
            time = time.checked_add(k * u64::from(delta)).ok_or_else(|| {
                HintError::invalid(path.as_str(), "decode times overflow 64 bits")
            })?;
        }
    } else if count > 0 {
        return Err(HintError::missing(format!("{stbl_path}/stts")));
    }
    if covered < u64::from(count) {
        // Too few entries: continue with the last duration.
        let delta = runs.last().map_or(0, |r| r.delta);
        let k = u64::from(count) - covered;
        runs.push(TimeRun {
            first_sample: covered as u32,
            count: k as u32,
            first_time: time,
            delta,
        });
        time = time.checked_add(k * u64::from(delta)).ok_or_else(|| {
            HintError::invalid(format!("{stbl_path}/stts"), "decode times overflow 64 bits")
        })?;
    }
    Ok((runs, time))
}

fn parse_ctts(
    raw: &RawTables<'_>,
    count: u32,
    track: u32,
    meter: &mut Meter<'_>,
) -> Result<Vec<OffsetRun>, HintError> {
    let Some((body, path)) = &raw.ctts else {
        return Ok(Vec::new());
    };
    let mut c = Cursor::new(body, path);
    c.full_box()?;
    let n = c.u32()?;
    c.require(u64::from(n), 8)?;
    meter
        .records(u64::from(n), size_of::<OffsetRun>())
        .map_err(|e| e.at(path.as_str(), Some(track)))?;
    let mut runs = Vec::with_capacity(n as usize);
    let mut covered: u64 = 0;
    for _ in 0..n {
        let k = c.u32()?;
        // Version 0 declares unsigned offsets, but writers store negative
        // values there too; both versions read as signed.
        let offset = c.i32()?;
        if covered >= u64::from(count) {
            break;
        }
        let k = u64::from(k).min(u64::from(count) - covered);
        if k == 0 {
            continue;
        }
        runs.push(OffsetRun {
            first_sample: covered as u32,
            count: k as u32,
            offset,
        });
        covered += k;
    }
    Ok(runs)
}

fn parse_stss(
    raw: &RawTables<'_>,
    count: u32,
    track: u32,
    meter: &mut Meter<'_>,
) -> Result<Option<Vec<u32>>, HintError> {
    let Some((body, path)) = &raw.stss else {
        return Ok(None);
    };
    let mut c = Cursor::new(body, path);
    c.full_box()?;
    let n = c.u32()?;
    c.require(u64::from(n), 4)?;
    meter
        .records(u64::from(n), size_of::<u32>())
        .map_err(|e| e.at(path.as_str(), Some(track)))?;
    let mut v = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let s = c.u32()?;
        if s >= 1 && s <= count {
            v.push(s - 1);
        }
    }
    v.sort_unstable();
    v.dedup();
    Ok(Some(v))
}

/// Iterator over a [`SampleTable`]'s samples in decode order, yielding
/// `(index, SampleInfo)`.
#[derive(Debug, Clone)]
pub struct SampleIter<'a> {
    table: &'a SampleTable,
    index: u32,
    chunk: usize,
    in_chunk_offset: u64,
    time_run: usize,
    time: u64,
    ctts_run: usize,
    sync_pos: usize,
}

impl Iterator for SampleIter<'_> {
    type Item = (u32, SampleInfo);

    fn next(&mut self) -> Option<Self::Item> {
        let t = self.table;
        let i = self.index;
        if i >= t.count {
            return None;
        }
        // Chunk: skip chunks that end at or before `i`.
        while let Some(c) = t.chunks.get(self.chunk) {
            if u64::from(c.first_sample) + u64::from(c.sample_count) > u64::from(i) {
                break;
            }
            self.chunk += 1;
            self.in_chunk_offset = 0;
        }
        let chunk = t.chunks.get(self.chunk)?;
        let size = t.size(i)?;
        let offset = if t.constant_size == 0 {
            *t.offsets.get(i as usize)?
        } else {
            chunk.offset.checked_add(self.in_chunk_offset)?
        };
        self.in_chunk_offset = self.in_chunk_offset.saturating_add(u64::from(size));
        while let Some(r) = t.times.get(self.time_run) {
            if u64::from(r.first_sample) + u64::from(r.count) > u64::from(i) {
                break;
            }
            self.time_run += 1;
            self.time = t
                .times
                .get(self.time_run)
                .map_or(self.time, |r| r.first_time);
        }
        let run = t.times.get(self.time_run)?;
        let decode_time = self.time;
        self.time = self.time.saturating_add(u64::from(run.delta));
        while let Some(r) = t.ctts.get(self.ctts_run) {
            if u64::from(r.first_sample) + u64::from(r.count) > u64::from(i) {
                break;
            }
            self.ctts_run += 1;
        }
        let composition_offset = t
            .ctts
            .get(self.ctts_run)
            .filter(|r| r.first_sample <= i)
            .map_or(0, |r| r.offset);
        let sync = match &t.sync {
            None => true,
            Some(s) => {
                while s.get(self.sync_pos).is_some_and(|&x| x < i) {
                    self.sync_pos += 1;
                }
                s.get(self.sync_pos) == Some(&i)
            }
        };
        self.index += 1;
        Some((
            i,
            SampleInfo {
                offset,
                size,
                decode_time,
                duration: run.delta,
                composition_offset,
                sync,
                description_index: chunk.description_index,
            },
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.table.count - self.index.min(self.table.count)) as usize;
        (n, Some(n))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn fb(entries: &[u32]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 0];
        for e in entries {
            v.extend_from_slice(&e.to_be_bytes());
        }
        v
    }

    /// A table from the entries of each box (version/flags added).
    pub(crate) fn table(
        stsz: &[u32],
        stco: &[u32],
        stsc: &[u32],
        stts: &[u32],
        stss: Option<&[u32]>,
    ) -> Result<SampleTable, HintError> {
        let stsz = fb(stsz);
        let stco = fb(stco);
        let stsc = fb(stsc);
        let stts = fb(stts);
        let stss = stss.map(fb);
        let raw = RawTables {
            stsz: Some((&stsz, "stsz".into())),
            stco: Some((&stco, "stco".into())),
            stsc: Some((&stsc, "stsc".into())),
            stts: Some((&stts, "stts".into())),
            stss: stss.as_deref().map(|b| (b, "stss".to_string())),
            ..Default::default()
        };
        let budget = crate::Budget::default();
        SampleTable::build(&raw, 1, "stbl", 10_000, &mut Meter::new(&budget, 10_000))
    }

    #[test]
    fn per_sample_offsets_times_and_sync() {
        // 5 samples of sizes 10,20,30,40,50; chunks: [0,1] at 100, [2,3,4] at 1000.
        let t = table(
            &[0, 5, 10, 20, 30, 40, 50],
            &[2, 100, 1000],
            &[2, 1, 2, 1, 2, 3, 1],
            &[2, 3, 10, 2, 20],
            Some(&[2, 1, 4]),
        )
        .unwrap();
        assert_eq!(t.len(), 5);
        let offs: Vec<u64> = t.iter().map(|(_, s)| s.offset).collect();
        assert_eq!(offs, [100, 110, 1000, 1030, 1070]);
        let times: Vec<u64> = t.iter().map(|(_, s)| s.decode_time).collect();
        assert_eq!(times, [0, 10, 20, 30, 50]);
        for (i, s) in t.iter() {
            assert_eq!(t.sample(i), Some(s));
        }
        assert!(t.is_sync(0) && t.is_sync(3) && !t.is_sync(1));
        assert_eq!(t.first_at_or_after(15), 2);
        assert_eq!(t.first_at_or_after(50), 4);
        assert_eq!(t.first_at_or_after(51), 5);
        assert_eq!(t.sync_at_or_before(2), Some(0));
        assert_eq!(t.total_duration(), 70);
        assert_eq!(t.sample(5), None);
    }

    #[test]
    fn constant_size_uses_chunks() {
        let t = table(
            &[4, 6],
            &[2, 0, 500],
            &[2, 1, 1, 1, 2, 5, 1],
            &[1, 6, 1],
            None,
        )
        .unwrap();
        let offs: Vec<u64> = t.iter().map(|(_, s)| s.offset).collect();
        assert_eq!(offs, [0, 500, 504, 508, 512, 516]);
        assert_eq!(t.offset(3), Some(508));
        assert!(t.iter().all(|(_, s)| s.sync));
    }

    #[test]
    fn rejects_uncovered_samples_and_huge_counts() {
        let e = table(&[0, 3, 1, 1, 1], &[1, 0], &[1, 1, 2, 1], &[1, 3, 1], None).unwrap_err();
        assert!(matches!(e, HintError::BadSample { sample: 3, .. }), "{e}");
        let e = table(&[0, u32::MAX], &[1, 0], &[1, 1, 2, 1], &[1, 3, 1], None).unwrap_err();
        assert!(matches!(e, HintError::Truncated { .. }), "{e}");
        let e = table(&[0, 1, 20_000], &[1, 0], &[1, 1, 1, 1], &[1, 1, 1], None).unwrap_err();
        assert!(matches!(e, HintError::BadSample { sample: 1, .. }), "{e}");
    }
}
