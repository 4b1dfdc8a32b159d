//! The HTTP/1.x request heads that open an RTSP-over-HTTP tunnel, and the
//! HTTP/1.0 responses the server writes (RFC 1945, RFC 9112 §3).

/// HTTP version of a request line. Only 1.0 and 1.1 exist here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    /// `HTTP/1.0` (what QuickTime and live555 send).
    Http10,
    /// `HTTP/1.1`.
    Http11,
}

impl HttpVersion {
    /// Parses `HTTP/1.0` or `HTTP/1.1` exactly; anything else is `None`.
    pub fn from_bytes(v: &[u8]) -> Option<Self> {
        match v {
            b"HTTP/1.0" => Some(Self::Http10),
            b"HTTP/1.1" => Some(Self::Http11),
            _ => None,
        }
    }
}

/// A complete HTTP/1.x request head, as read on the RTSP port.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequestHead {
    /// Method token, as sent (case preserved; HTTP methods are
    /// case-sensitive).
    pub method: String,
    /// Request target, as sent (`/x.mp4`, or an absolute URL through a
    /// proxy).
    pub path: String,
    /// Protocol version.
    pub version: HttpVersion,
    /// Header fields in order, names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
    /// Length of the head in bytes, blank line included: the body (a POST's
    /// base64 stream) starts at this offset of the connection's input.
    pub head_len: usize,
}

impl std::fmt::Debug for HttpRequestHead {
    /// Header values are not shown: `x-sessioncookie` binds a connection to
    /// a session and `Authorization` may carry credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequestHead")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("version", &self.version)
            .field("header_names", &names)
            .field("head_len", &self.head_len)
            .finish()
    }
}

impl HttpRequestHead {
    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (ASCII case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a complete head (`head` ends with the blank line) with `httparse`.
/// Errors are `httparse`'s description (bad token, bad version, header
/// value not UTF-8, too many headers, head incomplete).
pub(crate) fn parse_head(head: &[u8], max_headers: usize) -> Result<HttpRequestHead, &'static str> {
    let mut fields = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(head) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err("incomplete head"),
        Err(e) => return Err(httparse_error(e)),
    };
    let version = match req.version {
        Some(0) => HttpVersion::Http10,
        Some(1) => HttpVersion::Http11,
        _ => return Err("invalid HTTP version"),
    };
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Err("incomplete request line");
    };
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| "header value is not UTF-8")?;
        headers.push((h.name.to_string(), value.trim().to_string()));
    }
    Ok(HttpRequestHead {
        method: method.to_string(),
        path: path.to_string(),
        version,
        headers,
        head_len: len,
    })
}

fn httparse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// Reason phrase of the HTTP status codes the tunnel code answers with.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Keeps only printable ASCII of a configured header value, so a value can
/// never split the head.
fn header_safe(v: &str) -> String {
    v.chars().filter(|c| matches!(c, ' '..='~')).collect()
}

/// An HTTP/1.0 error response that ends the connection: status line,
/// `Server`, `Connection: close`, `Content-Length: 0`, then `extra` header
/// fields (e.g. `("Allow", "GET, POST")` for 405).
pub fn error_response(status: u16, server: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.0 {status} {}\r\nServer: {}\r\nConnection: close\r\nContent-Length: 0\r\n",
        reason(status),
        header_safe(server)
    );
    for (name, value) in extra {
        out.push_str(&format!(
            "{}: {}\r\n",
            header_safe(name),
            header_safe(value)
        ));
    }
    out.push_str("\r\n");
    out.into_bytes()
}
