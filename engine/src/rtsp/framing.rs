//! Splitting a connection's input into RTSP requests and interleaved binary
//! data (RFC 2326 §10.12), with `rtsp-types` doing the parsing.

use rtsp_types::{Message, ParseError, Request};

/// Largest RTSP message we buffer, in bytes; a larger one is a 400 and closes
/// the connection.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// One unit of connection input.
#[derive(Debug)]
pub enum Input {
    /// A complete request.
    Request(Request<Vec<u8>>),
    /// An interleaved `$` frame from the client (RTCP receiver reports).
    Data {
        /// Interleaved channel.
        channel: u8,
        /// Frame payload.
        payload: Vec<u8>,
    },
    /// A response from the client (clients answer our requests; ignored).
    Response,
    /// Bytes that are not RTSP: reply 400 and close.
    Malformed,
}

/// Parses the next unit from `buf`. Returns the unit and the number of bytes
/// it used, or `None` when more bytes are needed.
pub fn next(buf: &[u8]) -> Option<(Input, usize)> {
    if buf.is_empty() {
        return None;
    }
    // Skip stray CR/LF between messages (some clients send them as keep-alives).
    let skip = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if skip > 0 {
        return Some((Input::Response, skip));
    }
    match Message::<Vec<u8>>::parse(buf) {
        Ok((Message::Request(r), n)) => Some((Input::Request(r), n)),
        Ok((Message::Data(d), n)) => Some((
            Input::Data {
                channel: d.channel_id(),
                payload: d.into_body(),
            },
            n,
        )),
        Ok((Message::Response(_), n)) => Some((Input::Response, n)),
        Err(ParseError::Incomplete(_)) if buf.len() < MAX_MESSAGE => None,
        Err(_) => Some((Input::Malformed, buf.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_data_and_garbage() {
        let req = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n";
        assert!(next(&req[..10]).is_none());
        let (input, n) = next(req).expect("complete");
        assert_eq!(n, req.len());
        assert!(matches!(input, Input::Request(_)));

        let data = [b'$', 1, 0, 3, 9, 8, 7];
        let (input, n) = next(&data).expect("complete");
        assert_eq!(n, 7);
        assert!(matches!(input, Input::Data { channel: 1, ref payload } if payload == &[9, 8, 7]));

        let (input, _) = next(b"\x00\x01garbage\r\n\r\n").expect("decided");
        assert!(matches!(input, Input::Malformed));
    }
}
