//! The registry client's TLS setups: one that verifies (the system's roots plus `ca_bundle`), and one that does
//! not, for the registries dockerd treats as insecure.
//!
//! A certificate of `ca_bundle` that a server presents as its own is trusted as Go's crypto/x509 and OpenSSL
//! trust it (docker, curl and docker-pkg accept it), even when it says CA:TRUE, which webpki refuses for a leaf
//! (`CaUsedAsEndEntity`): that is what `openssl req -x509` makes. Its validity period, host names and extended
//! key usage are still checked.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_name;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, SignatureScheme};

/// The process's rustls provider if one was installed, else aws-lc-rs: reqwest's own choice, so that one
/// provider only is ever compiled in.
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default().cloned().unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// A client config around `verifier`, offering HTTP/2 then HTTP/1.1 as reqwest does for the configs it builds
/// (a preconfigured one is used as is, and checks are multiplexed over one HTTP/2 connection per registry).
fn client_config(provider: Arc<CryptoProvider>, verifier: Arc<dyn ServerCertVerifier>) -> Result<ClientConfig, Error> {
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Verification against the system's roots (as reqwest does, with rustls-platform-verifier) plus `bundle`.
pub(crate) fn verifying(bundle: Vec<CertificateDer<'static>>) -> Result<ClientConfig, Error> {
    let provider = provider();
    let inner = rustls_platform_verifier::Verifier::new_with_extra_roots(bundle.clone(), provider.clone())?;
    client_config(provider, Arc::new(BundleVerifier { inner, bundle }))
}

/// No certificate verification at all, as dockerd's `InsecureSkipVerify` for insecure registries; the
/// handshake signatures are still checked against the certificate presented.
pub(crate) fn unverified() -> Result<ClientConfig, Error> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    client_config(provider, Arc::new(Unverified(algorithms)))
}

/// The platform verifier, plus Go's rule that a leaf which is itself a trusted root is trusted.
#[derive(Debug)]
struct BundleVerifier {
    inner: rustls_platform_verifier::Verifier,
    bundle: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for BundleVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(verified) => Ok(verified),
            // Byte for byte one of the bundle's: the bundle is what is trusted, so no chain is needed (Go's
            // `Certificate.Verify` takes such a leaf as a chain of its own). Whatever the platform verifier
            // objected to, the leaf's own checks decide.
            Err(_) if self.bundle.iter().any(|trusted| trusted.as_ref() == end_entity.as_ref()) => {
                check_trusted_leaf(end_entity, server_name, now).map(|()| ServerCertVerified::assertion())
            }
            // webpki objects to the CA flag before it looks for an issuer; what is wrong with a self-signed
            // certificate outside the bundle is that nobody vouches for it.
            Err(err)
                if ca_used_as_end_entity(&err)
                    && LeafFields::parse(end_entity).is_some_and(|fields| fields.self_issued) =>
            {
                Err(CertificateError::UnknownIssuer.into())
            }
            Err(err) => Err(err),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Whether `err` is webpki's `CaUsedAsEndEntity`.
fn ca_used_as_end_entity(err: &Error) -> bool {
    matches!(err, Error::InvalidCertificate(CertificateError::Other(other))
        if matches!(other.0.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity)))
}

/// What Go checks of a leaf that is a trusted root: validity period, extended key usage, host name. (webpki's
/// parse also refuses unknown critical extensions, as Go does.)
fn check_trusted_leaf(der: &CertificateDer<'_>, server_name: &ServerName<'_>, now: UnixTime) -> Result<(), Error> {
    let parsed = ParsedCertificate::try_from(der)?;
    let fields = LeafFields::parse(der).ok_or(CertificateError::BadEncoding)?;
    let time = |seconds: i64| UnixTime::since_unix_epoch(Duration::from_secs(seconds.max(0).unsigned_abs()));
    let now_seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now_seconds < fields.not_before {
        return Err(CertificateError::NotValidYetContext { time: now, not_before: time(fields.not_before) }.into());
    }
    if now_seconds > fields.not_after {
        return Err(CertificateError::ExpiredContext { time: now, not_after: time(fields.not_after) }.into());
    }
    if !fields.server_auth {
        return Err(CertificateError::InvalidPurpose.into());
    }
    verify_server_name(&parsed, server_name)
}

/// Accepts any certificate; see [`unverified`].
#[derive(Debug)]
struct Unverified(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The parts of a certificate that webpki checks only along a chain, read from its DER.
#[derive(Debug, PartialEq, Eq)]
struct LeafFields {
    /// Validity, in seconds since the Unix epoch.
    not_before: i64,
    not_after: i64,
    /// No extended key usage extension, or one that allows serverAuth or any purpose.
    server_auth: bool,
    /// Issuer and subject are the same name.
    self_issued: bool,
}

/// DER tags met on the way.
const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
/// `[0]` (version) and `[3]` (extensions) of a TBSCertificate.
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
/// 2.5.29.37, 1.3.6.1.5.5.7.3.1 and 2.5.29.37.0, DER-encoded contents.
const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
const ANY_PURPOSE: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

/// One DER element of `input`: its tag, contents and what follows. Single-byte tags only, as in X.509.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        (bytes.iter().fold(0usize, |length, &b| (length << 8) | usize::from(b)), rest)
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

/// The element of `input` if it has `tag`, and what follows.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    element(input).and_then(|(found, contents, rest)| (found == tag).then_some((contents, rest)))
}

/// RFC 5280's UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), in seconds.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let (tag, contents, rest) = element(input)?;
    let digits = contents.strip_suffix(b"Z")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let text = std::str::from_utf8(digits).ok()?;
    let (year, text) = match (tag, text.len()) {
        (UTC_TIME, 12) => {
            let short: i16 = text[..2].parse().ok()?;
            (if short < 50 { 2000 + short } else { 1900 + short }, &text[2..])
        }
        (GENERALIZED_TIME, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let two = |at: usize| text[at..at + 2].parse::<i8>().ok();
    let civil = jiff::civil::DateTime::new(year, two(0)?, two(2)?, two(4)?, two(6)?, two(8)?, 0).ok()?;
    let seconds = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().as_second();
    Some((seconds, rest))
}

impl LeafFields {
    fn parse(der: &[u8]) -> Option<Self> {
        let (certificate, _) = expect(der, SEQUENCE)?;
        let (tbs, _) = expect(certificate, SEQUENCE)?;
        let mut rest = tbs;
        if let Some((_, after_version)) = expect(rest, VERSION) {
            rest = after_version;
        }
        // Serial number and signature algorithm: skipped.
        for _ in 0..2 {
            rest = element(rest)?.2;
        }
        let (issuer, rest) = expect(rest, SEQUENCE)?;
        let (validity, rest) = expect(rest, SEQUENCE)?;
        let (not_before, validity) = time(validity)?;
        let (not_after, _) = time(validity)?;
        let (subject, rest) = expect(rest, SEQUENCE)?;
        let self_issued = issuer == subject;
        let mut server_auth = true;
        // The public key, then the optional unique ids and extensions.
        let mut rest = element(rest)?.2;
        while let Some((tag, contents, after)) = element(rest) {
            rest = after;
            if tag == EXTENSIONS {
                let (mut extensions, _) = expect(contents, SEQUENCE)?;
                while !extensions.is_empty() {
                    let (extension, after) = expect(extensions, SEQUENCE)?;
                    extensions = after;
                    let (oid, mut value) = expect(extension, OID)?;
                    if oid != EXT_KEY_USAGE {
                        continue;
                    }
                    if let Some((_, after_critical)) = expect(value, BOOLEAN) {
                        value = after_critical;
                    }
                    let (octets, _) = expect(value, OCTET_STRING)?;
                    let (mut purposes, _) = expect(octets, SEQUENCE)?;
                    server_auth = false;
                    while !purposes.is_empty() {
                        let (purpose, after) = expect(purposes, OID)?;
                        purposes = after;
                        server_auth |= purpose == SERVER_AUTH || purpose == ANY_PURPOSE;
                    }
                }
            }
        }
        Some(Self { not_before, not_after, server_auth, self_issued })
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject as _;

    use super::*;

    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=reg.example
    /// -addext subjectAltName=DNS:reg.example,IP:192.0.2.7 -days 3650`: CA:TRUE, as `req -x509` makes them,
    /// valid from 1796025078 to 2111385078.
    const SELF_SIGNED: &str = "-----BEGIN CERTIFICATE-----
MIIBnzCCAUWgAwIBAgIULinsZyfXD9kDnQVAUlwMtJuihVwwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLcmVnLmV4YW1wbGUwHhcNMjYxMTMwMDc1MTE4WhcNMzYxMTI3
MDc1MTE4WjAWMRQwEgYDVQQDDAtyZWcuZXhhbXBsZTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABCk2fLEBrVU9dIgONSfJOpBaISfe5xRu64gG2gX7SQ8O9CSGo1Jj
9R2rOhorAhqWySRcbPGXUsoSBxAWhgXPa4GjcTBvMB0GA1UdDgQWBBTu2KPFbQoO
zLSNsuI/LkbKANouKzAfBgNVHSMEGDAWgBTu2KPFbQoOzLSNsuI/LkbKANouKzAP
BgNVHRMBAf8EBTADAQH/MBwGA1UdEQQVMBOCC3JlZy5leGFtcGxlhwTAAAIHMAoG
CCqGSM49BAMCA0gAMEUCIQCzlFCndx+lxyRJc0VQWtBxBBWGUXmceY2RM1fk50pj
zgIgQOgls7OY0AVxE1qod8QEdKKMrKkAFnaczSdXhWSoM5g=
-----END CERTIFICATE-----
";

    /// The same, plus `-addext extendedKeyUsage=critical,clientAuth,1.2.3` (so not for servers); valid from
    /// 1796025074 to 2111385074.
    const CLIENT_ONLY: &str = "-----BEGIN CERTIFICATE-----
MIIBvTCCAWOgAwIBAgIUL4lsvzJmnbza2V9ftxrNQxUFrVAwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLcmVnLmV4YW1wbGUwHhcNMjYxMTMwMDc1MTE0WhcNMzYxMTI3
MDc1MTE0WjAWMRQwEgYDVQQDDAtyZWcuZXhhbXBsZTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABJQi5vWKc58vdMlqjTJiB2Gx9IQy5hC72tK7uGDV/7MuGBxTLsUY
dKWuCMazaXDeuyoYHR+7eLHu2xKc98j/Jr+jgY4wgYswHQYDVR0OBBYEFL4KQGHd
BIhGRXcdkEHlxnqanA+8MB8GA1UdIwQYMBaAFL4KQGHdBIhGRXcdkEHlxnqanA+8
MA8GA1UdEwEB/wQFMAMBAf8wHAYDVR0RBBUwE4ILcmVnLmV4YW1wbGWHBMAAAgcw
GgYDVR0lAQH/BBAwDgYIKwYBBQUHAwIGAioDMAoGCCqGSM49BAMCA0gAMEUCIBNc
MVj/q+JDd570QpnjN0TXahgPv3R7cCl7WJ3jawEVAiEAlzBKP2mu5C659WdVsF42
6Z69hBdC5Ev3OjTc/UW95+Y=
-----END CERTIFICATE-----
";

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM")
    }

    fn at(seconds: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(seconds))
    }

    fn name(text: &str) -> ServerName<'static> {
        ServerName::try_from(text.to_owned()).expect("server name")
    }

    #[test]
    fn der_times() {
        assert_eq!(time(b"\x17\x0d200101000000Z").map(|t| t.0), Some(1_577_836_800));
        assert_eq!(time(b"\x17\x0d491231235959Z").map(|t| t.0), Some(2_524_607_999));
        assert_eq!(time(b"\x17\x0d500101000000Z").map(|t| t.0), Some(-631_152_000));
        assert_eq!(time(b"\x18\x0f20991231235959Z").map(|t| t.0), Some(4_102_444_799));
        assert_eq!(time(b"\x17\x0d201301000000Z"), None, "month 13");
        assert_eq!(time(b"\x17\x0b2001010000Z"), None, "no seconds");
        assert_eq!(time(b"\x18\x0d200101000000Z"), None, "GeneralizedTime with a two-digit year");
        assert_eq!(time(b"\x17\x0d20010100000+Z"), None);
        assert_eq!(time(b"\x17\x0e200101000000Z"), None, "truncated");
    }

    #[test]
    fn der_lengths() {
        assert_eq!(element(&[0x30, 0x81, 0x01, 0xff, 0x00]), Some((0x30, &[0xff][..], &[0x00][..])));
        assert_eq!(element(&[0x30, 0x80]), None, "indefinite length is not DER");
        assert_eq!(element(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(element(&[0x30, 0x02, 0x00]), None);
        assert_eq!(element(&[0x30]), None);
    }

    #[test]
    fn leaf_fields() {
        let fields = LeafFields::parse(&der(SELF_SIGNED)).expect("fields");
        let expected =
            LeafFields { not_before: 1_796_025_078, not_after: 2_111_385_078, server_auth: true, self_issued: true };
        assert_eq!(fields, expected);
        let fields = LeafFields::parse(&der(CLIENT_ONLY)).expect("fields");
        let expected =
            LeafFields { not_before: 1_796_025_074, not_after: 2_111_385_074, server_auth: false, self_issued: true };
        assert_eq!(fields, expected);
        let der = der(SELF_SIGNED);
        assert_eq!(LeafFields::parse(&der[..der.len() - 1]), None);
    }

    #[test]
    fn a_bundled_leaf_is_trusted_for_its_names_and_period_only() {
        let cert = der(SELF_SIGNED);
        let verifier = BundleVerifier {
            inner: rustls_platform_verifier::Verifier::new_with_extra_roots([cert.clone()], provider()).unwrap(),
            bundle: vec![cert.clone()],
        };
        let verify = |name: &str, now: u64| verifier.verify_server_cert(&cert, &[], &self::name(name), &[], at(now));
        let valid = 1_900_000_000;
        assert!(verify("reg.example", valid).is_ok());
        assert!(verify("192.0.2.7", valid).is_ok());
        // webpki's own answer, which the bundle overrides.
        let refused = verifier.inner.verify_server_cert(&cert, &[], &name("reg.example"), &[], at(valid));
        assert!(format!("{refused:?}").contains("CaUsedAsEndEntity"), "{refused:?}");
        let invalid = |name: &str, now: u64| match verify(name, now) {
            Err(Error::InvalidCertificate(error)) => error,
            other => panic!("{name} at {now}: {other:?}"),
        };
        assert!(matches!(invalid("other.example", valid), CertificateError::NotValidForNameContext { .. }));
        assert!(matches!(invalid("192.0.2.8", valid), CertificateError::NotValidForNameContext { .. }));
        assert!(matches!(invalid("reg.example", 1_796_025_077), CertificateError::NotValidYetContext { .. }));
        assert!(verify("reg.example", 1_796_025_078).is_ok());
        assert!(verify("reg.example", 2_111_385_078).is_ok());
        assert!(matches!(invalid("reg.example", 2_111_385_079), CertificateError::ExpiredContext { .. }));
    }

    #[test]
    fn only_the_bundled_leaf_itself_is_trusted() {
        let (trusted, other) = (der(SELF_SIGNED), der(CLIENT_ONLY));
        let verifier = BundleVerifier {
            inner: rustls_platform_verifier::Verifier::new_with_extra_roots([trusted.clone()], provider()).unwrap(),
            bundle: vec![trusted],
        };
        let refused = verifier.verify_server_cert(&other, &[], &name("reg.example"), &[], at(1_900_000_000));
        assert!(matches!(refused, Err(Error::InvalidCertificate(CertificateError::UnknownIssuer))), "{refused:?}");
        // In the bundle, but not for servers.
        let verifier = BundleVerifier {
            inner: rustls_platform_verifier::Verifier::new_with_extra_roots([other.clone()], provider()).unwrap(),
            bundle: vec![other.clone()],
        };
        let refused = verifier.verify_server_cert(&other, &[], &name("reg.example"), &[], at(1_900_000_000));
        assert!(matches!(refused, Err(Error::InvalidCertificate(CertificateError::InvalidPurpose))), "{refused:?}");
    }

    #[test]
    fn both_configs_offer_http2() {
        for config in [verifying(vec![der(SELF_SIGNED)]), unverified()] {
            let config = config.expect("config");
            assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        }
    }
}
