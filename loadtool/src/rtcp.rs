//! RTCP as a receiver sends and reads it (RFC 3550 §6): the compound receiver
//! report (RR + SDES CNAME) every ~5 s, and the sender reports and BYEs the
//! server sends, built and parsed with rtcp-types.

use rtcp_types::{
    Compound, Packet, ReceiverReport, ReportBlock, RtcpPacketWriterExt, Sdes, SdesChunk, SdesItem,
};

use crate::stats::ReportValues;

/// Largest compound RR the tool builds, bytes.
pub const MAX_RR: usize = 256;

/// Writes a compound RTCP packet: a receiver report from `own_ssrc` with one
/// report block about `source_ssrc`, and an SDES with our CNAME
/// (RFC 3550 §6.1: every compound packet carries a CNAME). Returns the bytes
/// written into `buf`, or `None` if `buf` is too small.
pub fn write_receiver_report(
    own_ssrc: u32,
    cname: &str,
    source_ssrc: u32,
    values: &ReportValues,
    buf: &mut [u8],
) -> Option<usize> {
    let block = ReportBlock::builder(source_ssrc)
        .fraction_lost(values.fraction_lost)
        .cumulative_lost(values.cumulative_lost)
        .extended_sequence_number(values.extended_highest)
        .interarrival_jitter(values.jitter)
        .last_sender_report_timestamp(values.lsr)
        .delay_since_last_sender_report_timestamp(values.dlsr);
    let rr = ReceiverReport::builder(own_ssrc).add_report_block(block);
    let sdes = Sdes::builder().add_chunk(
        SdesChunk::builder(own_ssrc).add_item(SdesItem::builder(SdesItem::CNAME, cname)),
    );
    Compound::builder()
        .add_packet(rr)
        .add_packet(sdes)
        .write_into(buf)
        .ok()
}

/// What an incoming RTCP packet says about one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpEvent {
    /// A sender report from `ssrc` with 64-bit NTP timestamp `ntp`.
    SenderReport {
        /// Sender SSRC.
        ssrc: u32,
        /// NTP timestamp (RFC 3550 §4).
        ntp: u64,
    },
    /// `ssrc` left (BYE).
    Bye {
        /// The departing SSRC.
        ssrc: u32,
    },
}

/// Reads a compound RTCP packet and calls `on_event` for each SR and for each
/// SSRC in a BYE. Returns false when the packet does not parse (nothing is
/// reported for it).
pub fn read_compound(data: &[u8], mut on_event: impl FnMut(RtcpEvent)) -> bool {
    let Ok(compound) = Compound::parse(data) else {
        return false;
    };
    for packet in compound {
        match packet {
            Ok(Packet::Sr(sr)) => on_event(RtcpEvent::SenderReport {
                ssrc: sr.ssrc(),
                ntp: sr.ntp_timestamp(),
            }),
            Ok(Packet::Bye(bye)) => {
                for ssrc in bye.ssrcs() {
                    on_event(RtcpEvent::Bye { ssrc });
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcp_types::{Bye, SenderReport};

    #[test]
    fn rr_round_trips_through_rtcp_types() {
        let values = ReportValues {
            fraction_lost: 3,
            cumulative_lost: 17,
            extended_highest: 0x0001_0010,
            jitter: 42,
            lsr: 0x1234_5678,
            dlsr: 65536,
        };
        let mut buf = [0u8; MAX_RR];
        let n = write_receiver_report(
            0xAABB_CCDD,
            "loadtool@127.0.0.1",
            0x1122_3344,
            &values,
            &mut buf,
        )
        .unwrap();
        let mut packets = Compound::parse(&buf[..n]).unwrap();
        match packets.next() {
            Some(Ok(Packet::Rr(rr))) => {
                assert_eq!(rr.ssrc(), 0xAABB_CCDD);
                let block = rr.report_blocks().next().unwrap();
                assert_eq!(block.ssrc(), 0x1122_3344);
                assert_eq!(block.fraction_lost(), 3);
                assert_eq!(block.cumulative_lost(), 17);
                assert_eq!(block.extended_sequence_number(), 0x0001_0010);
                assert_eq!(block.interarrival_jitter(), 42);
                assert_eq!(block.last_sender_report_timestamp(), 0x1234_5678);
                assert_eq!(block.delay_since_last_sender_report_timestamp(), 65536);
            }
            other => panic!("expected an RR first, got {other:?}"),
        }
        assert!(matches!(packets.next(), Some(Ok(Packet::Sdes(_)))));
    }

    #[test]
    fn reads_sr_and_bye() {
        let mut buf = [0u8; 256];
        let n = Compound::builder()
            .add_packet(SenderReport::builder(7).ntp_timestamp(0x0102_0304_0506_0708))
            .add_packet(Bye::builder().add_source(7))
            .write_into(&mut buf)
            .unwrap();
        let mut events = Vec::new();
        assert!(read_compound(&buf[..n], |e| events.push(e)));
        assert_eq!(
            events,
            vec![
                RtcpEvent::SenderReport {
                    ssrc: 7,
                    ntp: 0x0102_0304_0506_0708
                },
                RtcpEvent::Bye { ssrc: 7 }
            ]
        );
        assert!(!read_compound(&[0x12, 0x34], |_| {}));
    }
}
