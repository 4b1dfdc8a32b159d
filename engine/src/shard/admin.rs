//! What a shard tells the admin API about its sessions.

use crate::admin::{SessionInfo, TrackInfo};
use crate::endpoint::Endpoint;
use crate::metrics::Transport;
use crate::pipeline::media_and_codec;

/// One [`SessionInfo`] per session of `endpoint` (shard `shard`) at shard
/// clock `now_us`.
pub(super) fn session_infos(endpoint: &Endpoint, shard: usize, now_us: u64) -> Vec<SessionInfo> {
    endpoint
        .controller()
        .sessions()
        .map(|(_, s)| {
            let file = s.file();
            let tracks = s
                .tracks()
                .iter()
                .filter_map(|t| {
                    let sched = file.tracks.get(t.track())?;
                    let r = t.reception();
                    let reported = r.reports > 0;
                    let (_, codec) = media_and_codec(&sched.sdp);
                    Some(TrackInfo {
                        track_id: sched.track_id,
                        ssrc: t.ssrc(),
                        codec: (!codec.is_empty()).then_some(codec),
                        packets_sent: u64::from(t.packets_sent()),
                        bytes_sent: t.bytes_sent(),
                        rr_count: r.reports,
                        fraction_lost: reported.then(|| TrackInfo::fraction(r.fraction_lost)),
                        packets_lost: reported.then_some(u64::from(r.cumulative_lost)),
                        highest_seq: reported.then_some(r.extended_highest_seq),
                        packets_expected: t.packets_expected(),
                        loss_ratio: t.loss_ratio(),
                        jitter_us: if reported {
                            TrackInfo::jitter_us(r.jitter, sched.clock_rate)
                        } else {
                            None
                        },
                    })
                })
                .collect();
            SessionInfo {
                id: s.id().to_string(),
                shard,
                client: s.meta().peer,
                path: s.path().to_string(),
                transport: Transport::of(s),
                state: s.state(),
                started_unix_ms: s.meta().started_unix_us / 1000,
                npt_s: s.npt_us(now_us) as f64 / 1e6,
                bytes_sent: s.bytes_sent(),
                packets_sent: s.packets_sent(),
                user: s.meta().user.as_deref().map(str::to_string),
                tracks,
            }
        })
        .collect()
}
