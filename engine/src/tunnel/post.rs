//! The client→server half of a tunnel: the POST body, base64 RTSP (Apple,
//! "Tunneling QuickTime RTSP and RTP over HTTP"), decoded
//! ([`Base64Decoder`]) and then framed ([`Framer::tunnelled`]) into the
//! same [`Frame`]s a plain RTSP connection yields.

use crate::rtsp::framing::{Frame, Framer, Limits};
use crate::tunnel::base64::{Base64Decoder, Base64Error};

/// Largest decode scratch buffer kept between pushes, bytes; a larger one
/// (after a big read) is released so an idle tunnel holds little memory.
const KEEP_SCRATCH: usize = 4096;

/// Decoder of one POST body into RTSP input.
///
/// The shard pushes every chunk read on the POST connection (starting with
/// [`Framer::take_buffered`] of the connection's framer, the body bytes that
/// came with the head) and then calls [`next_frame`](Self::next_frame) until
/// `None`, exactly as with a plain connection's [`Framer`]. Replies go out
/// on the GET connection; nothing is ever written on the POST.
#[derive(Debug)]
pub struct PostBody {
    base64: Base64Decoder,
    framer: Framer,
    scratch: Vec<u8>,
    body_bytes: u64,
}

impl PostBody {
    /// A decoder at the start of a body; `limits` bound each tunnelled RTSP
    /// message as on a plain connection.
    pub fn new(limits: Limits) -> Self {
        Self {
            base64: Base64Decoder::new(),
            framer: Framer::tunnelled(limits),
            scratch: Vec::new(),
            body_bytes: 0,
        }
    }

    /// Feeds the next body bytes (base64, whitespace allowed, split
    /// anywhere). On error the POST body is unusable: close the POST
    /// connection (the GET may stay open for a new POST, as QuickTime
    /// reopens one). Every later call fails with [`Base64Error::Failed`].
    pub fn push(&mut self, body: &[u8]) -> Result<(), Base64Error> {
        self.body_bytes = self.body_bytes.saturating_add(body.len() as u64);
        self.scratch.clear();
        let result = self.base64.push(body, &mut self.scratch);
        if result.is_ok() {
            self.framer.push(&self.scratch);
        }
        self.scratch.clear();
        if self.scratch.capacity() > KEEP_SCRATCH {
            self.scratch = Vec::new();
        }
        result.map(|_| ())
    }

    /// The next tunnelled RTSP unit, or `None` when more body is needed.
    /// An HTTP head inside the tunnel is [`Frame::Malformed`]
    /// ([`crate::rtsp::framing::FramingError::UnexpectedHttp`]); answer a
    /// `Malformed` on the GET connection and close both halves.
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.framer.next_frame()
    }

    /// Base64 characters of a quantum split across reads (0-3); non-zero
    /// when the POST closes means the client tore a quantum.
    pub fn pending_chars(&self) -> usize {
        self.base64.pending()
    }

    /// Decoded bytes buffered and not yet framed (an incomplete message).
    pub fn buffered(&self) -> usize {
        self.framer.buffered()
    }

    /// Body bytes pushed so far (base64 and whitespace), for statistics.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }
}
