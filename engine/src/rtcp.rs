//! RTCP for the sender side (RFC 3550 §6): sender reports with SDES CNAME,
//! BYE on teardown, and parsing of the client's receiver reports. Pure code on
//! top of `rtcp-types`: bytes and times in, bytes and statistics out.

use rtcp_types::{
    Bye, Compound, CompoundBuilder, Packet, ReportBlock, RtcpPacketWriterExt, SdesBuilder,
    SdesChunk, SdesItem, SenderReport,
};

/// The CNAME every Cadence stream announces (RFC 3550 §6.5.1).
pub const CNAME: &str = "cadence";

/// Seconds between 1900-01-01 (NTP epoch) and 1970-01-01 (Unix epoch).
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

/// Converts a Unix time in µs to a 64-bit NTP timestamp (RFC 3550 §4:
/// 32.32 fixed-point seconds since 1900).
pub fn ntp_from_unix_us(unix_us: u64) -> u64 {
    let secs = unix_us / 1_000_000 + NTP_UNIX_OFFSET_S;
    let frac = ((unix_us % 1_000_000) << 32) / 1_000_000;
    (secs << 32) | frac
}

/// The figures of one sender report (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// SSRC of the track.
    pub ssrc: u32,
    /// NTP timestamp of the report (wall clock).
    pub ntp: u64,
    /// RTP timestamp corresponding to `ntp`, in the track's clock.
    pub rtp_time: u32,
    /// RTP packets sent so far.
    pub packets: u32,
    /// RTP payload octets sent so far.
    pub octets: u32,
}

/// Writes a compound SR + SDES(CNAME) packet into `buf`; returns its length
/// in bytes, or `None` when `buf` is too small (80 bytes always suffice).
pub fn write_sender_report(info: &SenderInfo, buf: &mut [u8]) -> Option<usize> {
    report(info).write_into(buf).ok()
}

/// Writes a compound SR + SDES + BYE packet for `info` into `buf` (RFC 3550
/// §6.6: a BYE is sent in a compound packet); returns its length in bytes, or
/// `None` when `buf` is too small (96 bytes always suffice).
pub fn write_bye(info: &SenderInfo, buf: &mut [u8]) -> Option<usize> {
    report(info)
        .add_packet(Bye::builder().add_source(info.ssrc))
        .write_into(buf)
        .ok()
}

/// The SR + SDES(CNAME) part every compound packet we send starts with
/// (RFC 3550 §6.1).
fn report(info: &SenderInfo) -> CompoundBuilder<'static> {
    let sdes = SdesBuilder::default().add_chunk(
        SdesChunk::builder(info.ssrc).add_item(SdesItem::builder(SdesItem::CNAME, CNAME)),
    );
    Compound::builder()
        .add_packet(
            SenderReport::builder(info.ssrc)
                .ntp_timestamp(info.ntp)
                .rtp_timestamp(info.rtp_time)
                .packet_count(info.packets)
                .octet_count(info.octets),
        )
        .add_packet(sdes)
}

/// One report block of a client's receiver report, about one of our SSRCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlockInfo {
    /// SSRC of the client (RR sender).
    pub reporter: u32,
    /// Our SSRC that the block is about.
    pub source: u32,
    /// Fraction lost, in 1/256 units.
    pub fraction_lost: u8,
    /// Cumulative packets lost (clamped at 0).
    pub cumulative_lost: u32,
    /// Extended highest sequence number received: the cycles of the 16-bit
    /// sequence number in the high 16 bits, the highest number in the low
    /// 16 (RFC 3550 §6.4.1).
    pub extended_highest_seq: u32,
    /// Interarrival jitter, RTP clock ticks.
    pub jitter: u32,
}

/// Parses a compound RTCP packet from a client and calls `f` for every
/// report block of every RR or SR in it. Returns the number of blocks, or
/// `Err` when the packet is malformed (RFC 3550 §6.1 validity checks as done by
/// `rtcp-types`).
pub fn for_each_report_block(
    data: &[u8],
    mut f: impl FnMut(ReportBlockInfo),
) -> Result<usize, rtcp_types::RtcpParseError> {
    let mut n = 0;
    let mut emit = |reporter: u32, b: ReportBlock<'_>| {
        // The 24-bit field is signed; negative (duplicates) means no loss.
        let cum = b.cumulative_lost();
        let cumulative_lost = if cum & 0x80_0000 != 0 { 0 } else { cum };
        f(ReportBlockInfo {
            reporter,
            source: b.ssrc(),
            fraction_lost: b.fraction_lost(),
            cumulative_lost,
            extended_highest_seq: b.extended_sequence_number(),
            jitter: b.interarrival_jitter(),
        });
        n += 1;
    };
    for packet in Compound::parse(data)? {
        match packet? {
            Packet::Rr(rr) => rr.report_blocks().for_each(|b| emit(rr.ssrc(), b)),
            Packet::Sr(sr) => sr.report_blocks().for_each(|b| emit(sr.ssrc(), b)),
            _ => {}
        }
    }
    Ok(n)
}

/// True when `data` starts like an RTCP packet (version 2, PT 200..=207):
/// used to tell RTCP from RTP on an interleaved channel.
pub fn looks_like_rtcp(data: &[u8]) -> bool {
    data.len() >= 8 && data[0] >> 6 == 2 && (200..=207).contains(&data[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcp_types::{ReceiverReport, RtcpPacketWriter};

    #[test]
    fn sender_report_round_trips() {
        let info = SenderInfo {
            ssrc: 0x1234_5678,
            ntp: ntp_from_unix_us(1_700_000_000_500_000),
            rtp_time: 90_000,
            packets: 42,
            octets: 4200,
        };
        let mut buf = [0u8; 128];
        let n = write_sender_report(&info, &mut buf).expect("fits");
        let mut saw_sr = false;
        for p in Compound::parse(&buf[..n]).expect("parses") {
            if let Packet::Sr(sr) = p.expect("packet") {
                assert_eq!(sr.ssrc(), info.ssrc);
                assert_eq!(sr.packet_count(), 42);
                assert_eq!(sr.octet_count(), 4200);
                assert_eq!(sr.rtp_timestamp(), 90_000);
                assert_eq!(sr.ntp_timestamp() >> 32, 1_700_000_000 + NTP_UNIX_OFFSET_S);
                // 0.5 s is half of 2^32.
                assert_eq!(sr.ntp_timestamp() & 0xffff_ffff, 1 << 31);
                saw_sr = true;
            }
        }
        assert!(saw_sr);
        assert!(looks_like_rtcp(&buf[..n]));
    }

    #[test]
    fn bye_contains_ssrc() {
        let info = SenderInfo {
            ssrc: 7,
            ntp: 0,
            rtp_time: 0,
            packets: 0,
            octets: 0,
        };
        let mut buf = [0u8; 128];
        let n = write_bye(&info, &mut buf).expect("fits");
        let byes: Vec<u32> = Compound::parse(&buf[..n])
            .expect("parses")
            .filter_map(|p| match p.ok()? {
                Packet::Bye(b) => Some(b.ssrcs().collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(byes, vec![7]);
    }

    #[test]
    fn receiver_report_blocks_are_read() {
        let rr = ReceiverReport::builder(99).add_report_block(
            ReportBlock::builder(7)
                .fraction_lost(12)
                .cumulative_lost(3)
                .extended_sequence_number(0x0001_0005)
                .interarrival_jitter(450),
        );
        let mut buf = vec![0u8; rr.calculate_size().expect("size")];
        rr.write_into(&mut buf).expect("writes");
        let mut got = Vec::new();
        let n = for_each_report_block(&buf, |b| got.push(b)).expect("parses");
        assert_eq!(n, 1);
        assert_eq!(got[0].reporter, 99);
        assert_eq!(got[0].source, 7);
        assert_eq!(got[0].fraction_lost, 12);
        assert_eq!(got[0].cumulative_lost, 3);
        assert_eq!(got[0].extended_highest_seq, 0x0001_0005);
        assert_eq!(got[0].jitter, 450);
        assert!(for_each_report_block(&[0x80, 201, 0, 5], |_| {}).is_err());
    }
}
