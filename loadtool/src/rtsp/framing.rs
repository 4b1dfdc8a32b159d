//! Splits the byte stream of an RTSP connection into RTSP messages and
//! interleaved binary frames (`$`, channel, 16-bit length, data; RFC 2326
//! §10.12).

use rtsp_types::{Message, ParseError, Request, Response};

/// Largest RTSP message the tool buffers (headers plus body, bytes). A server
/// that sends more without completing a message is treated as malformed.
pub const MAX_MESSAGE: usize = 1 << 20;

/// One unit read from an RTSP connection.
#[derive(Debug)]
pub enum Frame<'a> {
    /// An interleaved RTP or RTCP packet on `channel`.
    Interleaved {
        /// Channel number (even: RTP, odd: RTCP, by convention).
        channel: u8,
        /// The RTP or RTCP packet.
        data: &'a [u8],
    },
    /// A response to one of our requests.
    Response(Response<Vec<u8>>),
    /// A request from the server.
    Request(Request<Vec<u8>>),
}

/// The connection carries bytes that are neither RTSP nor interleaved data.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("malformed RTSP stream: {0}")]
pub struct FramingError(pub String);

/// Parses the frame at the start of `buf`. Returns the frame and the bytes it
/// took, or `None` when `buf` holds only part of a frame.
pub fn next_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FramingError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] == b'$' {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if buf.len() < 4 + len {
            return Ok(None);
        }
        return Ok(Some((
            Frame::Interleaved {
                channel: buf[1],
                data: &buf[4..4 + len],
            },
            4 + len,
        )));
    }
    match Message::<Vec<u8>>::parse(buf) {
        Ok((Message::Response(r), n)) => Ok(Some((Frame::Response(r), n))),
        Ok((Message::Request(r), n)) => Ok(Some((Frame::Request(r), n))),
        Ok((Message::Data(_), _)) => Err(FramingError("unexpected data message".into())),
        Err(ParseError::Incomplete(_)) if buf.len() <= MAX_MESSAGE => Ok(None),
        Err(ParseError::Incomplete(_)) => Err(FramingError(format!(
            "no complete message in {} bytes",
            buf.len()
        ))),
        Err(ParseError::Error) => {
            let head = String::from_utf8_lossy(&buf[..buf.len().min(40)]).into_owned();
            Err(FramingError(format!("cannot parse {head:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_and_response_mixed() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&[b'$', 0, 0, 3, 1, 2, 3]);
        stream.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 5\r\nSession: 12\r\n\r\n");
        stream.extend_from_slice(&[b'$', 1, 0, 2, 9, 9]);
        let (f, n) = next_frame(&stream).unwrap().unwrap();
        assert!(matches!(
            f,
            Frame::Interleaved {
                channel: 0,
                data: [1, 2, 3]
            }
        ));
        let rest = &stream[n..];
        let (f, n2) = next_frame(rest).unwrap().unwrap();
        match f {
            Frame::Response(r) => assert_eq!(u16::from(r.status()), 200),
            other => panic!("expected a response, got {other:?}"),
        }
        let (f, _) = next_frame(&rest[n2..]).unwrap().unwrap();
        assert!(matches!(
            f,
            Frame::Interleaved {
                channel: 1,
                data: [9, 9]
            }
        ));
    }

    #[test]
    fn partial_frames_wait_for_more() {
        assert!(next_frame(&[b'$', 0, 0]).unwrap().is_none());
        assert!(next_frame(&[b'$', 0, 0, 4, 1, 2]).unwrap().is_none());
        assert!(next_frame(b"RTSP/1.0 200 OK\r\nCSeq: 5\r\n")
            .unwrap()
            .is_none());
        let with_body = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 10\r\n\r\nv=0\r\n";
        assert!(next_frame(with_body).unwrap().is_none());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(next_frame(b"\x00\x01garbage that is not RTSP\r\n\r\n").is_err());
    }
}
