//! `HTTP_GET` and `SSL_GET`: a minimal HTTP/1.1 client.
//!
//! One connection per URL (`Connection: close`), as keepalived: `GET path HTTP/1.1`
//! with a `Host` header (the URL's `virtualhost`, else the checker's, else the
//! address and port), then the status line and headers, then — only when the URL has a
//! `digest` or a `regex` — the body, delimited by `Content-Length`, chunked encoding or
//! the end of the connection. The body is streamed into MD5 and kept for the regex up
//! to [`MAX_BODY`]; a longer body fails the URL. The verdict is
//! [`health::eval::evaluate_http`]'s.

use std::net::SocketAddr;
use std::time::Duration;

use health::eval::evaluate_http;
use health::{FailureKind, HttpCheck, HttpObservation, ProbeOutcome, UrlCheck};
use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::net::{destination, tcp_connect};

/// The longest response head (status line and headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// The longest body read for a digest or a regex.
pub const MAX_BODY: u64 = 1024 * 1024;

/// Why a response could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The status line is not `HTTP/1.x NNN …`.
    #[error("bad status line")]
    StatusLine,
    /// The head is longer than [`MAX_HEAD`].
    #[error("response head too long")]
    HeadTooLong,
    /// A `Content-Length` that is not a number, or two that differ.
    #[error("bad Content-Length")]
    ContentLength,
    /// Malformed chunked encoding.
    #[error("bad chunked encoding")]
    Chunked,
    /// The body is longer than [`MAX_BODY`].
    #[error("body too long")]
    BodyTooLong,
    /// The connection ended before the response did.
    #[error("truncated response")]
    Truncated,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (1xx, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// A parsed status line and the headers that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// How the body is delimited.
    pub framing: BodyFraming,
}

/// Parses a response head at the start of `buf`. Returns `Ok(None)` while the blank line
/// ending the head has not arrived, else the head and the number of bytes it took.
pub fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HttpError> {
    let Some(end) = find_head_end(buf) else {
        return if buf.len() > MAX_HEAD {
            Err(HttpError::HeadTooLong)
        } else {
            Ok(None)
        };
    };
    if end > MAX_HEAD {
        return Err(HttpError::HeadTooLong);
    }
    let head = buf.get(..end).ok_or(HttpError::Truncated)?;
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().ok_or(HttpError::StatusLine)?;
    let status = parse_status_line(status_line)?;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = std::str::from_utf8(value)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(HttpError::ContentLength)?;
            if length.is_some_and(|l| l != v) {
                return Err(HttpError::ContentLength);
            }
            length = Some(v);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyFraming::Empty
    } else if chunked {
        BodyFraming::Chunked
    } else if let Some(l) = length {
        BodyFraming::Length(l)
    } else {
        BodyFraming::UntilClose
    };
    Ok(Some((ResponseHead { status, framing }, end)))
}

/// The offset just past the blank line ending the head (`\r\n\r\n` or `\n\n`).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf.get(i) == Some(&b'\n') {
            match (buf.get(i + 1), buf.get(i + 2)) {
                (Some(b'\n'), _) => return Some(i + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

fn parse_status_line(line: &[u8]) -> Result<u16, HttpError> {
    let rest = line.strip_prefix(b"HTTP/1.").ok_or(HttpError::StatusLine)?;
    let code = match rest {
        [_, b' ', a, b, c, ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(HttpError::StatusLine),
    };
    match rest.get(5) {
        None | Some(b' ') | Some(b'\r') => Ok(code),
        Some(_) => Err(HttpError::StatusLine),
    }
}

/// Chunked-decoding state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line (RFC 9112 §7.1): its value so far, whether a digit was
    /// seen, whether we are in a chunk extension.
    Size { value: u64, digit: bool, ext: bool },
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// After chunk data, expecting CRLF.
    DataEnd,
    /// In the trailer section; how long the current line is.
    Trailer(usize),
    /// The last chunk and the trailer have been read.
    Done,
}

/// Decodes a body incrementally: feed it what arrives, it hands out body bytes.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    framing: BodyFraming,
    remaining: u64,
    chunk: Chunk,
    total: u64,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: BodyFraming) -> Self {
        BodyDecoder {
            framing,
            remaining: match framing {
                BodyFraming::Length(l) => l,
                _ => 0,
            },
            chunk: Chunk::Size {
                value: 0,
                digit: false,
                ext: false,
            },
            total: 0,
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        match self.framing {
            BodyFraming::Empty => true,
            BodyFraming::Length(_) => self.remaining == 0,
            BodyFraming::Chunked => self.chunk == Chunk::Done,
            BodyFraming::UntilClose => false,
        }
    }

    /// The end of the connection: fine for a body delimited by the close, an error for
    /// one that is not complete.
    pub fn finish(&self) -> Result<(), HttpError> {
        if self.is_done() || self.framing == BodyFraming::UntilClose {
            Ok(())
        } else {
            Err(HttpError::Truncated)
        }
    }

    /// Decodes `input`, passing body bytes to `out`. Bytes after the end of the body
    /// are ignored.
    pub fn feed(&mut self, mut input: &[u8], out: &mut impl FnMut(&[u8])) -> Result<(), HttpError> {
        while !input.is_empty() && !self.is_done() {
            let used = match self.framing {
                BodyFraming::Empty => input.len(),
                BodyFraming::Length(_) => {
                    let n = take(input.len(), self.remaining);
                    self.emit(input.get(..n).unwrap_or_default(), out)?;
                    self.remaining -= n as u64;
                    n
                }
                BodyFraming::UntilClose => {
                    self.emit(input, out)?;
                    input.len()
                }
                BodyFraming::Chunked => self.chunked(input, out)?,
            };
            input = input.get(used..).unwrap_or_default();
        }
        Ok(())
    }

    fn emit(&mut self, data: &[u8], out: &mut impl FnMut(&[u8])) -> Result<(), HttpError> {
        self.total += data.len() as u64;
        if self.total > MAX_BODY {
            return Err(HttpError::BodyTooLong);
        }
        out(data);
        Ok(())
    }

    /// One step of chunked decoding; returns how many input bytes it used.
    fn chunked(&mut self, input: &[u8], out: &mut impl FnMut(&[u8])) -> Result<usize, HttpError> {
        let Some(&b) = input.first() else {
            return Ok(0);
        };
        self.chunk = match self.chunk {
            Chunk::Data(left) => {
                let n = take(input.len(), left);
                self.emit(input.get(..n).unwrap_or_default(), out)?;
                let left = left - n as u64;
                self.chunk = if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                };
                return Ok(n);
            }
            Chunk::Size { value, digit, ext } => match b {
                b'\n' if !digit => return Err(HttpError::Chunked),
                b'\n' if value == 0 => Chunk::Trailer(0),
                b'\n' => Chunk::Data(value),
                b'\r' => self.chunk,
                b';' => Chunk::Size {
                    value,
                    digit,
                    ext: true,
                },
                _ if ext => self.chunk,
                b' ' | b'\t' => Chunk::Size {
                    value,
                    digit,
                    ext: true,
                },
                _ => {
                    let d = (b as char).to_digit(16).ok_or(HttpError::Chunked)?;
                    let value = value
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(u64::from(d)))
                        .ok_or(HttpError::Chunked)?;
                    Chunk::Size {
                        value,
                        digit: true,
                        ext: false,
                    }
                }
            },
            Chunk::DataEnd => match b {
                b'\r' => Chunk::DataEnd,
                b'\n' => Chunk::Size {
                    value: 0,
                    digit: false,
                    ext: false,
                },
                _ => return Err(HttpError::Chunked),
            },
            Chunk::Trailer(len) => match b {
                b'\n' if len == 0 => Chunk::Done,
                b'\n' => Chunk::Trailer(0),
                b'\r' => Chunk::Trailer(len),
                _ => Chunk::Trailer(len + 1),
            },
            Chunk::Done => Chunk::Done,
        };
        Ok(1)
    }
}

fn take(available: usize, wanted: u64) -> usize {
    usize::try_from(wanted).map_or(available, |w| w.min(available))
}

/// The request keepalived-style checkers send, or `None` if the path or host would
/// break the request line (CR, LF, or a space in the path).
pub fn build_request(path: &str, host: &str) -> Option<Vec<u8>> {
    let bad = |s: &str, space: bool| {
        s.bytes()
            .any(|b| b == b'\r' || b == b'\n' || (space && b == b' '))
    };
    if path.is_empty() || bad(path, true) || bad(host, false) {
        return None;
    }
    Some(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: fulcrum-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
    )
}

/// The `Host` header: the URL's virtual host, else the checker's, else `addr:port`
/// (the port omitted when it is the scheme's default).
pub fn host_header(check: &HttpCheck, url: &UrlCheck, dest: SocketAddr) -> String {
    if let Some(h) = url.virtualhost.as_ref().or(check.virtualhost.as_ref()) {
        return h.clone();
    }
    let default_port = if check.ssl { 443 } else { 80 };
    let ip = match dest {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    if dest.port() == default_port {
        ip
    } else {
        format!("{ip}:{}", dest.port())
    }
}

/// Sends `request` on `stream` and reads the response, hashing the body when
/// `want_md5` and keeping it (as text) when `want_body`.
pub async fn exchange<S>(
    mut stream: S,
    request: &[u8],
    want_md5: bool,
    want_body: bool,
) -> Result<(u16, Option<[u8; 16]>, Option<Vec<u8>>), FailureKind>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(request)
        .await
        .map_err(|_| FailureKind::Connect)?;
    stream.flush().await.map_err(|_| FailureKind::Connect)?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let (head, used) = loop {
        match parse_head(&buf) {
            Ok(Some((h, used))) if (100..200).contains(&h.status) => {
                // An interim response (100 Continue …): drop it, the real one follows.
                buf.drain(..used);
                continue;
            }
            Ok(Some(found)) => break found,
            Ok(None) => {}
            Err(_) => return Err(FailureKind::Response),
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| FailureKind::Connect)?;
        if n == 0 {
            return Err(FailureKind::Response);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    if !want_md5 && !want_body {
        return Ok((head.status, None, None));
    }
    let mut md5 = Md5::new();
    let mut body = Vec::new();
    let mut sink = |d: &[u8]| {
        if want_md5 {
            md5.update(d);
        }
        if want_body {
            body.extend_from_slice(d);
        }
    };
    let mut dec = BodyDecoder::new(head.framing);
    dec.feed(buf.get(used..).unwrap_or_default(), &mut sink)
        .map_err(|_| FailureKind::Response)?;
    while !dec.is_done() {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| FailureKind::Connect)?;
        if n == 0 {
            dec.finish().map_err(|_| FailureKind::Response)?;
            break;
        }
        dec.feed(chunk.get(..n).unwrap_or_default(), &mut sink)
            .map_err(|_| FailureKind::Response)?;
    }
    let digest = want_md5.then(|| md5.finalize().into());
    Ok((head.status, digest, want_body.then_some(body)))
}

/// Fetches one URL over a fresh connection and builds what `health` judges.
async fn fetch_url(
    check: &HttpCheck,
    url: &UrlCheck,
    dest: SocketAddr,
    deadline: Instant,
) -> Result<HttpObservation, FailureKind> {
    let host = host_header(check, url, dest);
    let request = build_request(&url.path, &host).ok_or(FailureKind::Response)?;
    let regex = match &url.regex {
        Some(r) => Some(regex::bytes::Regex::new(r).map_err(|_| FailureKind::Response)?),
        None => None,
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let stream = tcp_connect(&check.conn, dest, left).await?;
    let want_md5 = url.digest.is_some();
    let want_body = regex.is_some();
    let work = async {
        if check.ssl {
            let sni = if check.enable_sni {
                url.virtualhost.as_deref().or(check.virtualhost.as_deref())
            } else {
                None
            };
            let tls = crate::tls::connect(stream, sni, dest.ip()).await?;
            exchange(tls, &request, want_md5, want_body).await
        } else {
            exchange(stream, &request, want_md5, want_body).await
        }
    };
    let (status, body_md5, body) = tokio::time::timeout_at(deadline, work)
        .await
        .map_err(|_| FailureKind::Timeout)??;
    Ok(HttpObservation {
        status,
        body_md5,
        regex_matched: match (&regex, &body) {
            (Some(re), Some(b)) => Some(re.is_match(b)),
            _ => None,
        },
    })
}

/// Runs one `HTTP_GET` / `SSL_GET` attempt: every URL in order, each on its own
/// connection, all within `timeout`; stops at the first URL that cannot be fetched.
pub async fn http_check(check: &HttpCheck, server: SocketAddr, timeout: Duration) -> ProbeOutcome {
    let dest = destination(&check.conn, server);
    let deadline = Instant::now() + timeout;
    let mut responses = Vec::with_capacity(check.urls.len());
    for url in &check.urls {
        let r = fetch_url(check, url, dest, deadline).await;
        let failed = r.is_err();
        responses.push(r);
        if failed {
            break;
        }
    }
    evaluate_http(check, &responses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(framing: BodyFraming, parts: &[&[u8]]) -> Result<(Vec<u8>, bool), HttpError> {
        let mut d = BodyDecoder::new(framing);
        let mut body = Vec::new();
        for p in parts {
            d.feed(p, &mut |b: &[u8]| body.extend_from_slice(b))?;
        }
        Ok((body, d.is_done()))
    }

    #[test]
    fn head_with_length() {
        let raw = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\n\r\nhello";
        let (h, used) = parse_head(raw).unwrap().unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, BodyFraming::Length(5));
        assert_eq!(&raw[used..], b"hello");
        assert_eq!(parse_head(&raw[..20]).unwrap(), None);
    }

    #[test]
    fn head_variants() {
        let (h, _) = parse_head(b"HTTP/1.0 500 Internal\n\n").unwrap().unwrap();
        assert_eq!((h.status, h.framing), (500, BodyFraming::UntilClose));
        let (h, _) = parse_head(b"HTTP/1.1 204\r\nContent-Length: 9\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, BodyFraming::Empty);
        let (h, _) = parse_head(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\ncontent-length: 3\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, BodyFraming::Chunked);
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(parse_head(&long), Err(HttpError::HeadTooLong));
    }

    #[test]
    fn chunked_bodies() {
        let raw: &[u8] =
            b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nJUNK";
        let (body, done) = decode(BodyFraming::Chunked, &[raw]).unwrap();
        assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
        assert!(done);
        // Byte by byte gives the same.
        let parts: Vec<&[u8]> = raw.chunks(1).collect();
        let (body2, done2) = decode(BodyFraming::Chunked, &parts).unwrap();
        assert_eq!((body2, done2), (body, true));
        // Incomplete.
        let (_, done) = decode(BodyFraming::Chunked, &[b"4\r\nWi"]).unwrap();
        assert!(!done);
        assert_eq!(
            decode(BodyFraming::Chunked, &[b"zz\r\n"]),
            Err(HttpError::Chunked)
        );
        assert_eq!(
            decode(BodyFraming::Chunked, &[b"\r\n"]),
            Err(HttpError::Chunked)
        );
        assert_eq!(
            decode(BodyFraming::Chunked, &[b"ffffffffffffffffff\r\n"]),
            Err(HttpError::Chunked)
        );
        assert_eq!(
            decode(BodyFraming::Chunked, &[b"2\r\nabX"]),
            Err(HttpError::Chunked)
        );
    }

    #[test]
    fn length_and_limits() {
        let (b, done) = decode(BodyFraming::Length(3), &[b"ab", b"cdef"]).unwrap();
        assert_eq!((b.as_slice(), done), (&b"abc"[..], true));
        let mut d = BodyDecoder::new(BodyFraming::Length(10));
        d.feed(b"abc", &mut |_: &[u8]| {}).unwrap();
        assert_eq!(d.finish(), Err(HttpError::Truncated));
        assert_eq!(BodyDecoder::new(BodyFraming::UntilClose).finish(), Ok(()));
        let big = vec![0u8; 64 * 1024];
        let mut d = BodyDecoder::new(BodyFraming::UntilClose);
        let mut r = Ok(());
        for _ in 0..17 {
            r = r.and_then(|_| d.feed(&big, &mut |_: &[u8]| {}));
        }
        assert_eq!(r, Err(HttpError::BodyTooLong));
    }

    #[test]
    fn requests_and_hosts() {
        let r = build_request("/health", "10.0.0.1:8080").unwrap();
        assert_eq!(
            r,
            b"GET /health HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nUser-Agent: fulcrum-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        assert!(build_request("/a b", "h").is_none());
        assert!(build_request("/", "h\r\nX: y").is_none());
        let mut check = HttpCheck {
            conn: Default::default(),
            ssl: false,
            urls: vec![UrlCheck::new("/")],
            virtualhost: None,
            enable_sni: false,
        };
        let url = UrlCheck::new("/");
        assert_eq!(
            host_header(&check, &url, "10.0.0.1:80".parse().unwrap()),
            "10.0.0.1"
        );
        assert_eq!(
            host_header(&check, &url, "[fd00::1]:81".parse().unwrap()),
            "[fd00::1]:81"
        );
        check.virtualhost = Some("www.example".into());
        assert_eq!(
            host_header(&check, &url, "10.0.0.1:80".parse().unwrap()),
            "www.example"
        );
        let mut url = url;
        url.virtualhost = Some("api.example".into());
        assert_eq!(
            host_header(&check, &url, "10.0.0.1:80".parse().unwrap()),
            "api.example"
        );
    }

    #[tokio::test]
    async fn exchange_over_a_pipe() {
        let (client, mut server) = tokio::io::duplex(4096);
        let srv = tokio::spawn(async move {
            let mut req = vec![0u8; 1024];
            let n = server.read(&mut req).await.unwrap();
            req.truncate(n);
            server
                .write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                )
                .await
                .unwrap();
            req
        });
        let (status, md5, body) = exchange(client, b"GET / HTTP/1.1\r\n\r\n", true, true)
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(body.as_deref(), Some(&b"abc"[..]));
        // md5("abc")
        assert_eq!(
            md5.unwrap(),
            [
                0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1,
                0x7f, 0x72
            ]
        );
        assert_eq!(srv.await.unwrap(), b"GET / HTTP/1.1\r\n\r\n");
    }
}
