//! Pure verdicts on what a probe observed: HTTP responses, MISC exit statuses, UDP
//! replies and tracked-file values. The daemon performs the I/O, then asks these.

use crate::config::{FileCheck, HttpCheck, UdpCheck, UdpReply, UrlCheck, WEIGHT_LIMIT};

/// What the daemon saw for one URL of an `HTTP_GET` / `SSL_GET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpObservation {
    /// The response status code.
    pub status: u16,
    /// MD5 of the response body, when the URL has a `digest` (the daemon hashes the body
    /// as it streams it in).
    pub body_md5: Option<[u8; 16]>,
    /// Whether the URL's `regex` matched the body, when it has one (the daemon owns the
    /// regex engine; this crate has no regex dependency).
    pub regex_matched: Option<bool>,
}

/// Why a URL check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpMismatch {
    /// The status code is outside the accepted ranges.
    #[error("status code {0} not accepted")]
    Status(u16),
    /// The body's MD5 differs from `digest`.
    #[error("body digest mismatch")]
    Digest,
    /// A `digest` is configured but the daemon supplied no body digest.
    #[error("body digest missing")]
    DigestMissing,
    /// The `regex` matched when it must not, or did not when it must.
    #[error("regex verdict negative")]
    Regex,
    /// A `regex` is configured but the daemon supplied no verdict.
    #[error("regex verdict missing")]
    RegexMissing,
}

/// Judges one URL the way keepalived does: the status must be in one of the
/// `status_code` ranges (any 2xx when none is configured), then the body digest must
/// equal `digest` if set, then the regex verdict must be positive (or negative with
/// `regex_no_match`) if a `regex` is set.
pub fn evaluate_url(url: &UrlCheck, obs: &HttpObservation) -> Result<(), HttpMismatch> {
    let status_ok = if url.status_codes.is_empty() {
        (200..=299).contains(&obs.status)
    } else {
        url.status_codes.iter().any(|r| r.contains(obs.status))
    };
    if !status_ok {
        return Err(HttpMismatch::Status(obs.status));
    }
    if let Some(want) = url.digest {
        match obs.body_md5 {
            Some(got) if got == want => {}
            Some(_) => return Err(HttpMismatch::Digest),
            None => return Err(HttpMismatch::DigestMissing),
        }
    }
    if url.regex.is_some() {
        match obs.regex_matched {
            Some(m) if m != url.regex_no_match => {}
            Some(_) => return Err(HttpMismatch::Regex),
            None => return Err(HttpMismatch::RegexMissing),
        }
    }
    Ok(())
}

/// Judges a whole `HTTP_GET` / `SSL_GET` attempt: `responses[i]` is what the daemon got
/// for `check.urls[i]` (or why it got nothing). keepalived requires every URL to pass;
/// a missing entry is a failure.
pub fn evaluate_http(
    check: &HttpCheck,
    responses: &[Result<HttpObservation, FailureKind>],
) -> ProbeOutcome {
    for (i, url) in check.urls.iter().enumerate() {
        match responses.get(i) {
            Some(Ok(obs)) => {
                if evaluate_url(url, obs).is_err() {
                    return ProbeOutcome::Failure(FailureKind::Response);
                }
            }
            Some(Err(kind)) => return ProbeOutcome::Failure(*kind),
            None => return ProbeOutcome::Failure(FailureKind::Response),
        }
    }
    ProbeOutcome::Success
}

/// How a `MISC_CHECK` program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MiscExit {
    /// It exited with this status.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
    /// It ran past `misc_timeout` (and was killed by the daemon).
    TimedOut,
}

/// The verdict of one probe attempt, as the checker state machine takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The attempt passed.
    Success,
    /// The attempt passed and sets the server's weight (`misc_dynamic`).
    SuccessWithWeight(u32),
    /// The attempt failed.
    Failure(FailureKind),
}

impl ProbeOutcome {
    /// Whether the attempt passed.
    pub fn is_success(&self) -> bool {
        !matches!(self, ProbeOutcome::Failure(_))
    }
}

/// Why an attempt failed (for logs and counters; every kind counts the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer within the timeout.
    Timeout,
    /// Connection refused or reset, ICMP unreachable, TLS handshake failure.
    Connect,
    /// An answer that does not satisfy the check (status, digest, regex, UDP payload).
    Response,
    /// A `MISC_CHECK` exit status or signal meaning failure.
    Program,
}

/// keepalived's `MISC_CHECK` reading of an exit status. Without `misc_dynamic`: 0 is
/// success, anything else failure. With it: 0 success (weight unchanged), 1 failure,
/// 2..=255 success with weight = status − 2. Signals, timeouts and statuses outside
/// 0..=255 are failures.
pub fn interpret_misc_exit(dynamic: bool, exit: MiscExit) -> ProbeOutcome {
    match exit {
        MiscExit::Code(0) => ProbeOutcome::Success,
        MiscExit::Code(c) if dynamic && (2..=255).contains(&c) => {
            // 2..=255 fits: c - 2 is 0..=253.
            ProbeOutcome::SuccessWithWeight(c.unsigned_abs() - 2)
        }
        MiscExit::Code(_) | MiscExit::Signal(_) => ProbeOutcome::Failure(FailureKind::Program),
        MiscExit::TimedOut => ProbeOutcome::Failure(FailureKind::Timeout),
    }
}

/// What a `UDP_CHECK` attempt saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpObservation<'a> {
    /// A datagram came back.
    Reply(&'a [u8]),
    /// An ICMP error (port unreachable …) came back.
    IcmpError,
    /// Nothing came back within the timeout.
    Silence,
}

/// keepalived's `UDP_CHECK` verdict: an ICMP error always fails; silence passes only
/// without `require_reply`; a reply must start with the required bytes if any.
pub fn evaluate_udp(check: &UdpCheck, obs: UdpObservation<'_>) -> ProbeOutcome {
    match (obs, &check.require_reply) {
        (UdpObservation::IcmpError, _) => ProbeOutcome::Failure(FailureKind::Connect),
        (UdpObservation::Silence, UdpReply::NoErrorIsEnough) => ProbeOutcome::Success,
        (UdpObservation::Silence, _) => ProbeOutcome::Failure(FailureKind::Timeout),
        (UdpObservation::Reply(_), UdpReply::NoErrorIsEnough | UdpReply::AnyReply) => {
            ProbeOutcome::Success
        }
        (UdpObservation::Reply(data), UdpReply::Prefix(p)) => {
            if data.starts_with(p) {
                ProbeOutcome::Success
            } else {
                ProbeOutcome::Failure(FailureKind::Response)
            }
        }
    }
}

/// The effect of a tracked file's value on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileVerdict {
    /// The server is up, its weight shifted by this amount.
    Weight(i64),
    /// The server is down.
    Down,
}

/// Parses a tracked file's content as keepalived does: leading/trailing whitespace
/// ignored, a decimal integer; anything unreadable or unparsable counts as 0.
pub fn parse_file_value(content: Option<&str>) -> i64 {
    content
        .and_then(|c| c.trim().parse::<i64>().ok())
        .unwrap_or(0)
}

/// keepalived's `FILE_CHECK`: with `weight 0` any non-zero value marks the server down;
/// otherwise the value × weight (negated with `reverse`) is added to the server's
/// weight, saturating at ±`WEIGHT_LIMIT`.
pub fn evaluate_file(check: &FileCheck, value: i64) -> FileVerdict {
    if check.weight == 0 {
        return if value == 0 {
            FileVerdict::Weight(0)
        } else {
            FileVerdict::Down
        };
    }
    let limit = i64::from(WEIGHT_LIMIT);
    let mut delta = value.saturating_mul(i64::from(check.weight));
    if check.reverse {
        delta = delta.saturating_neg();
    }
    FileVerdict::Weight(delta.clamp(-limit, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StatusRange;

    fn obs(status: u16) -> HttpObservation {
        HttpObservation {
            status,
            body_md5: None,
            regex_matched: None,
        }
    }

    #[test]
    fn http_status_default_is_any_2xx() {
        let url = UrlCheck::new("/health");
        assert_eq!(evaluate_url(&url, &obs(200)), Ok(()));
        assert_eq!(evaluate_url(&url, &obs(204)), Ok(()));
        assert_eq!(
            evaluate_url(&url, &obs(301)),
            Err(HttpMismatch::Status(301))
        );
        assert_eq!(
            evaluate_url(&url, &obs(199)),
            Err(HttpMismatch::Status(199))
        );
    }

    #[test]
    fn http_status_ranges() {
        let mut url = UrlCheck::new("/");
        url.status_codes = vec![
            StatusRange::code(200),
            StatusRange::parse("300-302").unwrap(),
        ];
        assert_eq!(evaluate_url(&url, &obs(200)), Ok(()));
        assert_eq!(evaluate_url(&url, &obs(302)), Ok(()));
        assert_eq!(
            evaluate_url(&url, &obs(204)),
            Err(HttpMismatch::Status(204))
        );
    }

    #[test]
    fn http_digest_and_regex() {
        let mut url = UrlCheck::new("/");
        url.digest = Some([7; 16]);
        let mut o = obs(200);
        assert_eq!(evaluate_url(&url, &o), Err(HttpMismatch::DigestMissing));
        o.body_md5 = Some([8; 16]);
        assert_eq!(evaluate_url(&url, &o), Err(HttpMismatch::Digest));
        o.body_md5 = Some([7; 16]);
        assert_eq!(evaluate_url(&url, &o), Ok(()));
        // Status is judged before the digest.
        o.status = 500;
        assert_eq!(evaluate_url(&url, &o), Err(HttpMismatch::Status(500)));
        o.status = 200;
        url.regex = Some("OK".into());
        assert_eq!(evaluate_url(&url, &o), Err(HttpMismatch::RegexMissing));
        o.regex_matched = Some(true);
        assert_eq!(evaluate_url(&url, &o), Ok(()));
        url.regex_no_match = true;
        assert_eq!(evaluate_url(&url, &o), Err(HttpMismatch::Regex));
        o.regex_matched = Some(false);
        assert_eq!(evaluate_url(&url, &o), Ok(()));
    }

    #[test]
    fn http_check_needs_every_url() {
        use crate::config::ConnectOptions;
        let mut second = UrlCheck::new("/b");
        second.status_codes = vec![StatusRange::code(204)];
        let check = HttpCheck {
            conn: ConnectOptions::default(),
            ssl: false,
            urls: vec![UrlCheck::new("/a"), second],
            virtualhost: None,
            enable_sni: false,
        };
        assert_eq!(
            evaluate_http(&check, &[Ok(obs(200)), Ok(obs(204))]),
            ProbeOutcome::Success
        );
        assert_eq!(
            evaluate_http(&check, &[Ok(obs(200)), Ok(obs(200))]),
            ProbeOutcome::Failure(FailureKind::Response)
        );
        assert_eq!(
            evaluate_http(&check, &[Ok(obs(200))]),
            ProbeOutcome::Failure(FailureKind::Response)
        );
        assert_eq!(
            evaluate_http(&check, &[Err(FailureKind::Timeout), Ok(obs(204))]),
            ProbeOutcome::Failure(FailureKind::Timeout)
        );
    }

    #[test]
    fn misc_exit_codes() {
        use ProbeOutcome::*;
        assert_eq!(interpret_misc_exit(false, MiscExit::Code(0)), Success);
        assert_eq!(
            interpret_misc_exit(false, MiscExit::Code(1)),
            Failure(FailureKind::Program)
        );
        assert_eq!(
            interpret_misc_exit(false, MiscExit::Code(3)),
            Failure(FailureKind::Program)
        );
        assert_eq!(interpret_misc_exit(true, MiscExit::Code(0)), Success);
        assert_eq!(
            interpret_misc_exit(true, MiscExit::Code(1)),
            Failure(FailureKind::Program)
        );
        assert_eq!(
            interpret_misc_exit(true, MiscExit::Code(2)),
            SuccessWithWeight(0)
        );
        assert_eq!(
            interpret_misc_exit(true, MiscExit::Code(255)),
            SuccessWithWeight(253)
        );
        assert_eq!(
            interpret_misc_exit(true, MiscExit::Code(256)),
            Failure(FailureKind::Program)
        );
        assert_eq!(
            interpret_misc_exit(true, MiscExit::Code(-1)),
            Failure(FailureKind::Program)
        );
        assert_eq!(
            interpret_misc_exit(true, MiscExit::Signal(9)),
            Failure(FailureKind::Program)
        );
        assert_eq!(
            interpret_misc_exit(true, MiscExit::TimedOut),
            Failure(FailureKind::Timeout)
        );
    }

    #[test]
    fn udp_verdicts() {
        let mut c = UdpCheck::default();
        assert!(evaluate_udp(&c, UdpObservation::Silence).is_success());
        assert!(!evaluate_udp(&c, UdpObservation::IcmpError).is_success());
        c.require_reply = UdpReply::AnyReply;
        assert!(!evaluate_udp(&c, UdpObservation::Silence).is_success());
        assert!(evaluate_udp(&c, UdpObservation::Reply(b"")).is_success());
        c.require_reply = UdpReply::Prefix(b"PONG".to_vec());
        assert!(evaluate_udp(&c, UdpObservation::Reply(b"PONG 1")).is_success());
        assert!(!evaluate_udp(&c, UdpObservation::Reply(b"PON")).is_success());
    }

    #[test]
    fn file_values() {
        assert_eq!(parse_file_value(Some(" 12\n")), 12);
        assert_eq!(parse_file_value(Some("-3")), -3);
        assert_eq!(parse_file_value(Some("abc")), 0);
        assert_eq!(parse_file_value(None), 0);
        let mut f = FileCheck {
            file: "/run/drain".into(),
            weight: 0,
            reverse: false,
        };
        assert_eq!(evaluate_file(&f, 0), FileVerdict::Weight(0));
        assert_eq!(evaluate_file(&f, 1), FileVerdict::Down);
        f.weight = 10;
        assert_eq!(evaluate_file(&f, -2), FileVerdict::Weight(-20));
        f.reverse = true;
        assert_eq!(evaluate_file(&f, -2), FileVerdict::Weight(20));
        assert_eq!(evaluate_file(&f, i64::MIN), FileVerdict::Weight(65535));
    }
}
