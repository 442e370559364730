//! How to reach a registry: HTTPS or plain HTTP, retry timing, and transport failures worded for humans.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
pub(crate) fn host_of(registry: &str) -> &str {
    if registry.parse::<IpAddr>().is_ok() {
        return registry;
    }
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(host, _)| host)
}

/// An IP network, `address/bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    address: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(text: &str) -> Option<Self> {
        let (address, bits) = text.split_once('/')?;
        let address: IpAddr = address.parse().ok()?;
        let bits: u8 = bits.parse().ok()?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Self { address, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        // As Go's `Addr.Unmap`: an IPv4-mapped IPv6 address is its IPv4 address.
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.bits)).unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The registries dockerd calls insecure, by its rule (moby `daemon/pkg/registry/config.go`:
/// `loadInsecureRegistries`, `isSecureIndex`, `isCIDRMatch`): an `insecure_registries` entry equal to the
/// registry's `host[:port]` as written, or a CIDR of the list, or 127.0.0.0/8 and ::1/128 (always there), that
/// holds the registry's IP address or one its host name resolves to (so `localhost` is insecure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InsecureRegistries {
    names: Vec<String>,
    cidrs: Vec<Cidr>,
}

impl InsecureRegistries {
    /// From the config's `insecure_registries`; an entry dockerd would refuse (e.g. `ftp://…`, `host/path`)
    /// is an error naming it.
    pub(crate) fn new(entries: &[String]) -> Result<Self, String> {
        let loopback = [
            Cidr { address: Ipv4Addr::new(127, 0, 0, 0).into(), bits: 8 },
            Cidr { address: Ipv6Addr::LOCALHOST.into(), bits: 128 },
        ];
        let mut insecure = Self { names: Vec::new(), cidrs: loopback.into() };
        for entry in entries {
            let invalid = |why: &str| format!("insecure_registries entry `{entry}` {why}");
            let mut text = entry.trim();
            // dockerd drops an http:// or https:// prefix (with a warning) and refuses other schemes.
            if let Some((scheme, rest)) = text.split_once("://") {
                if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
                    return Err(invalid("has a scheme other than http:// or https://"));
                }
                text = rest;
            }
            if let Some(cidr) = Cidr::parse(text) {
                insecure.cidrs.push(cidr);
            } else if text.is_empty() || text.contains(['/', '?', '#', '@']) || text.contains(char::is_whitespace) {
                return Err(invalid("is neither host[:port] nor a CIDR"));
            } else {
                insecure.names.push(text.to_owned());
            }
        }
        Ok(insecure)
    }

    /// Whether `registry` is insecure by its name alone: `Some` for a listed `host[:port]` or an IP address,
    /// `None` for a host name to resolve (then [`InsecureRegistries::covers`] its addresses).
    pub(crate) fn by_name(&self, registry: &str) -> Option<bool> {
        if self.names.iter().any(|name| name == registry) {
            return Some(true);
        }
        let ip: IpAddr = host_of(registry).parse().ok()?;
        Some(self.covers(ip))
    }

    /// Whether a CIDR holds `ip`.
    pub(crate) fn covers(&self, ip: IpAddr) -> bool {
        self.cidrs.iter().any(|cidr| cidr.contains(ip))
    }
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
    /// A TLS handshake or certificate failure.
    pub tls: bool,
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
        return TransportFailure { message: format!("timed out talking to {target}"), retryable: true, tls: false };
    }
    let https = target.starts_with("https://");
    // rustls reports handshake and certificate failures as InvalidData I/O errors.
    if https && io_error.is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData) {
        let host = target.trim_start_matches("https://").split('/').next().unwrap_or(target);
        return TransportFailure {
            message: format!("TLS error talking to {host}: {cause}"),
            retryable: false,
            tls: true,
        };
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
    TransportFailure { message, retryable, tls: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_always_insecure() {
        let insecure = InsecureRegistries::new(&[]).unwrap();
        for yes in ["127.0.0.1", "127.1.2.3:443", "[::1]", "[::1]:5000", "::1", "[::ffff:127.0.0.1]:5000"] {
            assert_eq!(insecure.by_name(yes), Some(true), "{yes}");
        }
        for no in ["10.0.0.1:5000", "[2001:db8::1]:5000", "128.0.0.1", "192.0.2.2:5000"] {
            assert_eq!(insecure.by_name(no), Some(false), "{no}");
        }
        // Host names are resolved first (`localhost` resolves to loopback).
        for name in ["localhost", "localhost:5000", "registry.example", "localhost.example"] {
            assert_eq!(insecure.by_name(name), None, "{name}");
        }
    }

    #[test]
    fn insecure_registries_match_exactly_or_by_cidr() {
        let entries = ["reg.example:5000", "http://other.example", "https://10.1.0.0/16", "192.0.2.9", "fd00::/8"];
        let insecure = InsecureRegistries::new(&entries.map(String::from)).unwrap();
        assert_eq!(insecure.by_name("reg.example:5000"), Some(true));
        assert_eq!(insecure.by_name("other.example"), Some(true));
        // dockerd compares `host[:port]` as written: another port, or the bare host, is another registry.
        assert_eq!(insecure.by_name("reg.example:5001"), None);
        assert_eq!(insecure.by_name("reg.example"), None);
        assert_eq!(insecure.by_name("other.example:443"), None);
        assert_eq!(insecure.by_name("192.0.2.9"), Some(true));
        assert_eq!(insecure.by_name("192.0.2.9:5000"), Some(false));
        assert_eq!(insecure.by_name("10.1.200.3:5000"), Some(true));
        assert_eq!(insecure.by_name("10.2.0.1:5000"), Some(false));
        assert_eq!(insecure.by_name("[fd12::1]:5000"), Some(true));
        assert!(insecure.covers("10.1.0.1".parse().unwrap()));
        assert!(!insecure.covers("fe80::1".parse().unwrap()));
    }

    #[test]
    fn bad_insecure_registries_entries_are_errors() {
        for entry in ["ftp://reg.example", "reg.example/path", "", "a b", "10.0.0.0/33"] {
            let err = InsecureRegistries::new(&[entry.to_owned()]).unwrap_err();
            assert!(err.contains(&format!("`{entry}`")), "{err}");
        }
    }

    #[test]
    fn cidrs() {
        let cidr = |text: &str| Cidr::parse(text).unwrap();
        assert!(cidr("0.0.0.0/0").contains("203.0.113.1".parse().unwrap()));
        assert!(cidr("10.0.0.1/8").contains("10.255.0.1".parse().unwrap()));
        assert!(!cidr("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(cidr("192.0.2.2/32").contains("192.0.2.2".parse().unwrap()));
        assert!(!cidr("192.0.2.2/32").contains("192.0.2.3".parse().unwrap()));
        assert!(cidr("::/0").contains("2001:db8::1".parse().unwrap()));
        assert!(!cidr("::1/128").contains("127.0.0.1".parse().unwrap()));
        assert_eq!(Cidr::parse("::1/129"), None);
        assert_eq!(Cidr::parse("10.0.0.0"), None);
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
