//! Admission control, a built-in authorizer: while the shard is behind its
//! schedule (see [`crate::endpoint`]'s timers), a SETUP that would create a
//! new session gets 453 Not Enough Bandwidth (RFC 2326 §11.3.5). Sessions
//! already playing are not affected.

use rtsp_types::StatusCode;

use crate::pipeline::{Extension, Identity, RequestInfo, Route, Verdict};

/// The admission-control extension.
#[derive(Debug, Clone, Copy, Default)]
pub struct Admission;

impl Extension for Admission {
    fn name(&self) -> &str {
        "admission"
    }

    fn authorize(&mut self, req: &RequestInfo<'_>, _route: &Route, _id: &Identity) -> Verdict {
        if req.creates_session() && req.load.behind {
            return Verdict::Deny {
                status: StatusCode::NotEnoughBandwidth,
                reason: "shard is behind; refusing new sessions".into(),
            };
        }
        Verdict::Allow
    }
}
