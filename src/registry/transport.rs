//! How to reach a registry: HTTPS or plain HTTP, retry timing, and transport failures worded for humans.

use std::net::IpAddr;
use std::time::Duration;

/// When and how often a request is retried (429, 5xx, connection failures and timeouts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub tries: u32,
    /// Wait before the second try; doubled before each later one.
    pub first_delay: Duration,
    /// Cap on any wait, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { tries: 3, first_delay: Duration::from_millis(200), max_delay: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// The wait after failed try number `attempt` (1-based): the registry's `Retry-After` if it sent one,
    /// else exponential backoff; capped either way.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = || self.first_delay.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        retry_after.unwrap_or_else(backoff).min(self.max_delay)
    }
}

/// `Retry-After` in seconds; the HTTP-date form is left to the backoff.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The host of `host[:port]`, `[v6]:port` or a bare IP address, without brackets.
fn host_of(registry: &str) -> &str {
    if registry.parse::<IpAddr>().is_ok() {
        return registry;
    }
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(host, _)| host)
}

/// `localhost`, 127.0.0.0/8 or `::1`, with or without a port.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Plain HTTP for loopback registries and those in `insecure_registries` (matched as `host:port`, or as a bare
/// host for every port), HTTPS for the rest.
pub(crate) fn uses_plain_http(registry: &str, insecure: &[String]) -> bool {
    let registry = registry.to_ascii_lowercase();
    is_loopback(&registry)
        || insecure.iter().any(|entry| {
            let entry = entry.trim().to_ascii_lowercase();
            let entry = entry.strip_prefix("http://").or_else(|| entry.strip_prefix("https://")).unwrap_or(&entry);
            let entry = entry.trim_end_matches('/');
            entry == registry || entry == host_of(&registry)
        })
}

/// The I/O error an I/O error wraps, if any (connectors nest them; `source()` skips the nested one).
fn innermost_io(io: &std::io::Error) -> &std::io::Error {
    match io.get_ref().and_then(|inner| inner.downcast_ref::<std::io::Error>()) {
        Some(inner) => innermost_io(inner),
        None => io,
    }
}

/// A request that got no HTTP answer, worded for humans.
#[derive(Debug)]
pub(crate) struct TransportFailure {
    pub message: String,
    /// Worth another try (refused, reset, timed out); TLS failures are not: they do not fix themselves.
    pub retryable: bool,
}

/// Describes `err`, met while talking to `target` (`https://host/v2/`, a token realm…).
pub(crate) fn describe(err: &reqwest::Error, target: &str) -> TransportFailure {
    let mut io_error = None;
    let mut cause: &dyn std::error::Error = err;
    while let Some(source) = cause.source() {
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            io_error = Some(innermost_io(io));
        }
        cause = source;
    }
    if err.is_timeout() {
        return TransportFailure { message: format!("timed out talking to {target}"), retryable: true };
    }
    let https = target.starts_with("https://");
    // rustls reports handshake and certificate failures as InvalidData I/O errors.
    if https && io_error.is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData) {
        let host = target.trim_start_matches("https://").split('/').next().unwrap_or(target);
        return TransportFailure { message: format!("TLS error talking to {host}: {cause}"), retryable: false };
    }
    let reason = match io_error.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
        Some(std::io::ErrorKind::ConnectionReset) => "connection reset".to_owned(),
        _ => cause.to_string(),
    };
    let retryable = err.is_connect() || err.is_request() || io_error.is_some();
    let message = if err.is_connect() {
        format!("cannot connect to {target}: {reason}")
    } else {
        format!("request to {target} failed: {reason}")
    };
    TransportFailure { message, retryable }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        for yes in ["localhost", "LOCALHOST:5000", "127.0.0.1", "127.1.2.3:443", "[::1]", "[::1]:5000", "::1"] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in ["registry.example", "10.0.0.1:5000", "[2001:db8::1]:5000", "localhost.example", "128.0.0.1", ""] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    #[test]
    fn insecure_registries_match_host_port_or_host() {
        let insecure = vec!["reg.example:5000".to_owned(), "http://other.example/".to_owned()];
        assert!(uses_plain_http("reg.example:5000", &insecure));
        assert!(!uses_plain_http("reg.example:5001", &insecure));
        assert!(uses_plain_http("other.example:1234", &insecure));
        assert!(uses_plain_http("Other.example", &insecure));
        assert!(!uses_plain_http("docker.io", &insecure));
        assert!(uses_plain_http("127.0.0.1:5000", &[]));
    }

    #[test]
    fn retry_after_and_backoff() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1, None), Duration::from_millis(200));
        assert_eq!(policy.delay(2, None), Duration::from_millis(400));
        assert_eq!(policy.delay(40, None), Duration::from_secs(10));
        assert_eq!(policy.delay(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(policy.delay(1, Some(Duration::from_secs(3600))), Duration::from_secs(10));
    }
}
