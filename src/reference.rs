//! Docker image references, the one home of their grammar (as in `github.com/distribution/reference`): legal
//! repository names, tags and digests, splitting `repo[:tag][@digest]`, and the validated [`Reference`] that
//! the engine and the registry client take.
//!
//! Hand-written rather than a regex so that each rejection can say what exactly is wrong.

use std::fmt;

/// Longest repository name (registry included) Docker accepts.
const NAME_MAX: usize = 255;
/// Longest tag Docker accepts.
const TAG_MAX: usize = 128;

/// A legal Docker reference: `repository[:tag][@digest]`, where the repository may start with a registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses and checks a whole reference; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts = Parts::of(text);
        check_repository(parts.repository)?;
        if let Some(tag) = parts.tag {
            check_tag(tag)?;
        }
        if let Some(digest) = parts.digest {
            check_digest(digest)?;
        }
        Ok(Self {
            repository: parts.repository.to_owned(),
            tag: parts.tag.map(str::to_owned),
            digest: parts.digest.map(str::to_owned),
        })
    }

    /// `registry/namespace/name`, as written.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The registry host (`reg.example:5000`), `None` for Docker Hub.
    pub fn registry(&self) -> Option<&str> {
        registry(&self.repository)
    }

    /// The repository inside its registry: `ns/name` of `reg.example:5000/ns/name`.
    pub fn path(&self) -> &str {
        match self.registry() {
            Some(host) => &self.repository[host.len() + 1..],
            None => &self.repository,
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same repository under another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, String> {
        check_tag(tag)?;
        Ok(Self { repository: self.repository.clone(), tag: Some(tag.to_owned()), digest: None })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The parts of a reference as written, not checked: for references that may well be illegal (those a
/// Dockerfile names, the labels of a tree whose tags Docker rejects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl<'a> Parts<'a> {
    /// Splits `repo[:tag][@digest]`: the digest after the first `@`, the tag after the first `:` that no `/`
    /// follows, so that a registry's `:port` stays in the repository and an epoch tag (`foo:2:1.0-1`, which
    /// docker-pkg trees can hold) keeps its own `:`.
    pub fn of(reference: &'a str) -> Self {
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (reference, None),
        };
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        match name[slash..].find(':') {
            Some(i) => Self { repository: &name[..slash + i], tag: Some(&name[slash + i + 1..]), digest },
            None => Self { repository: name, tag: None, digest },
        }
    }

    /// Where a registry serves this reference: its registry (`docker.io` for Docker Hub), the repository in it,
    /// and the manifest to ask for (the digest, else the tag, else `latest`).
    pub fn location(&self) -> (&'a str, &'a str, &'a str) {
        let manifest = self.digest.or(self.tag).unwrap_or("latest");
        match registry(self.repository) {
            Some(host) => (host, &self.repository[host.len() + 1..], manifest),
            None => ("docker.io", self.repository, manifest),
        }
    }
}

/// Checks a repository path (`registry[:port]/ns/name` or `name`) against Docker's grammar.
pub fn check_repository(repository: &str) -> Result<(), String> {
    repository_problem(repository)
        .map_or(Ok(()), |p| Err(format!("`{repository}` is not a valid Docker repository: {p}")))
}

/// Checks a registry address, `host[:port]` (a domain, an IPv4 address or a bracketed IPv6 one).
pub fn check_registry(host: &str) -> Result<(), String> {
    let problem = if host.is_empty() { Some("it is empty".to_owned()) } else { domain_problem(host) };
    problem.map_or(Ok(()), |p| Err(format!("`{host}` is not a valid registry address: {p}")))
}

/// Checks a tag against Docker's grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    tag_problem(tag).map_or(Ok(()), |p| Err(format!("`{tag}` is not a valid Docker tag: {p}")))
}

/// Checks a digest `algorithm:hex` (e.g. `sha256:` and 64 lowercase hex digits).
pub fn check_digest(digest: &str) -> Result<(), String> {
    digest_problem(digest).map_or(Ok(()), |p| Err(format!("`{digest}` is not a valid digest: {p}")))
}

/// The registry a repository or reference names (`reg.example:5000` in `reg.example:5000/ns/a:1`), as Docker
/// reads it: a first component with a `.` or `:`, or `localhost`, followed by more. `None` means Docker Hub.
pub fn registry(reference: &str) -> Option<&str> {
    let (first, _) = reference.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

fn repository_problem(repository: &str) -> Option<String> {
    if repository.is_empty() {
        return Some("the name is empty".into());
    }
    if repository.len() > NAME_MAX {
        return Some(format!("it is {} characters long (at most {NAME_MAX} are allowed)", repository.len()));
    }
    let mut components = repository.split('/').peekable();
    if let Some(first) = registry(repository) {
        components.next();
        if let Some(p) = domain_problem(first) {
            return Some(format!("registry `{first}`: {p}"));
        }
    }
    components.find_map(|c| path_component_problem(c).map(|p| format!("path component `{c}`: {p}")))
}

/// `host[:port]`, where host is dot-separated domain components or a bracketed IPv6 address.
fn domain_problem(domain: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return Some("`[` without a closing `]`".into());
        };
        if ip.is_empty() || !ip.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Some(format!("`[{ip}]` is not an IPv6 address"));
        }
        match after.strip_prefix(':') {
            Some(port) => ("", Some(port)),
            None if after.is_empty() => ("", None),
            None => return Some(format!("unexpected `{after}` after the IPv6 address")),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(format!("port `{port}` is not a number"));
    }
    if domain.starts_with('[') {
        return None;
    }
    host.split('.').find_map(|c| {
        let ok = !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !c.starts_with('-')
            && !c.ends_with('-');
        (!ok).then(|| {
            format!("`{c}` is not a valid host name part (letters, digits and inner `-`, separated by single `.`)")
        })
    })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn path_component_problem(component: &str) -> Option<String> {
    if component.is_empty() {
        return Some("empty (a leading, trailing or doubled `/`)".into());
    }
    if let Some(c) = component.chars().find(char::is_ascii_uppercase) {
        return Some(format!("`{c}`: uppercase letters are not allowed (repository names must be lowercase)"));
    }
    if let Some(c) = component.chars().find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))) {
        return Some(format!("`{c}` is not allowed (use lowercase letters, digits, `.`, `_` and `-`)"));
    }
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return Some("must start and end with a lowercase letter or digit".into());
    }
    // Separators between alphanumeric runs: `.`, `_`, `__`, or any number of `-`.
    component.split(|c: char| c.is_ascii_alphanumeric()).filter(|s| !s.is_empty()).find_map(|sep| {
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        (!ok).then(|| format!("separator `{sep}` is not allowed (use `.`, `_`, `__` or dashes)"))
    })
}

fn tag_problem(tag: &str) -> Option<String> {
    let allowed = "(tags may contain letters, digits, `_`, `.` and `-`)";
    let Some(first) = tag.chars().next() else {
        return Some("the tag is empty".into());
    };
    if let Some(c) = tag.chars().find(|&c| !(c.is_ascii_alphanumeric() || "_.-".contains(c))) {
        return Some(format!("`{c}` is not allowed {allowed}"));
    }
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Some(format!("it starts with `{first}` (a tag must start with a letter, digit or `_`)"));
    }
    (tag.len() > TAG_MAX).then(|| format!("it is {} characters long (at most {TAG_MAX} are allowed)", tag.len()))
}

/// `algorithm:encoded`; algorithm = `[A-Za-z][A-Za-z0-9]*` joined by `+._-`; encoded hex of at least 32 digits,
/// with the exact lowercase length for the registered SHA-2 algorithms.
fn digest_problem(digest: &str) -> Option<String> {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Some("expected `algorithm:hex`".into());
    };
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|c| {
        c.chars().next().is_some_and(|f| f.is_ascii_alphabetic()) && c.chars().all(|c| c.is_ascii_alphanumeric())
    });
    if !algorithm_ok {
        return Some(format!("`{algorithm}` is not a valid algorithm name"));
    }
    let expected = match algorithm {
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    };
    match expected {
        Some(n) if encoded.len() != n || !encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
            Some(format!("{algorithm} needs {n} lowercase hex digits"))
        }
        None if encoded.len() < 32 || !encoded.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some("expected at least 32 hex digits after the algorithm".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_in_a_registry() {
        let location = |r| Parts::of(r).location();
        assert_eq!(location("debian:12"), ("docker.io", "debian", "12"));
        assert_eq!(location("grafana/grafana"), ("docker.io", "grafana/grafana", "latest"));
        assert_eq!(location("127.0.0.1:5000/ns/base:1@sha256:ab"), ("127.0.0.1:5000", "ns/base", "sha256:ab"));
        assert_eq!(location("reg.example/bookworm:20240101"), ("reg.example", "bookworm", "20240101"));
    }

    #[test]
    fn repositories() {
        for ok in [
            "foo",
            "ns/foo",
            "docker-registry.wikimedia.org/bookworm",
            "localhost/foo",
            "localhost:5000/foo",
            "reg:5000/ns/foo",
            "[::1]:5000/foo",
            "a__b/c.d/e--f_g",
            "docker-registry.wikimedia.org/php8.3-fpm",
            &"a".repeat(255),
        ] {
            assert_eq!(check_repository(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Foo",
            "ns/Foo",
            "Foo/bar",
            "foo/",
            "/foo",
            "a//b",
            "-foo",
            "foo-",
            "a...b",
            "a___b",
            "a._b",
            "foo:bar",
            "foo bar",
            "reg:port/foo",
            "-reg.example/foo",
            "reg..example/foo",
            "[::1/foo",
            &"a".repeat(256),
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
        let message = check_repository("ns/Foo").unwrap_err();
        assert!(message.contains("uppercase"), "{message}");
        let message = check_repository(&"a".repeat(256)).unwrap_err();
        assert!(message.contains("256 characters"), "{message}");
    }

    #[test]
    fn tags() {
        for ok in ["1", "latest", "_x", "1.63.0-1-20241211", "V1_2", &"a".repeat(128)] {
            assert_eq!(check_tag(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".x", "-x", "a b", &"a".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_tag("0.0.1~alpha1"),
            Err("`0.0.1~alpha1` is not a valid Docker tag: `~` is not allowed \
                 (tags may contain letters, digits, `_`, `.` and `-`)"
                .into())
        );
        assert!(check_tag("2:1.0-1").unwrap_err().contains("`:` is not allowed"));
        assert!(check_tag("1.0+b1").unwrap_err().contains("`+` is not allowed"));
    }

    #[test]
    fn digests() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(check_digest(&format!("sha256:{hex}")), Ok(()));
        assert!(check_digest(&format!("sha256:{}", hex.to_uppercase())).is_err());
        assert!(check_digest("sha256:abc").is_err());
        assert!(check_digest(&hex).is_err());
        assert!(check_digest(&format!("9sha:{hex}")).is_err());
        assert_eq!(check_digest(&format!("multihash+base58:{hex}")), Ok(()));
    }

    #[test]
    fn registry_addresses() {
        for ok in ["reg.example", "localhost:5000", "127.0.0.1:443", "[::1]:5000", "myregistry"] {
            assert_eq!(check_registry(ok), Ok(()), "{ok}");
        }
        for bad in ["", "reg/x", "reg?x", "reg example", "reg:port", "-reg"] {
            assert!(check_registry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registries_are_first_components_that_look_like_hosts() {
        assert_eq!(registry("reg.example:5000/ns/a:1"), Some("reg.example:5000"));
        assert_eq!(registry("localhost/a"), Some("localhost"));
        assert_eq!(registry("127.0.0.1:5000/a@sha256:00"), Some("127.0.0.1:5000"));
        assert_eq!(registry("library/debian:12"), None);
        // No `/`: the `:` is a tag's, not a port's.
        assert_eq!(registry("debian:12"), None);
        assert_eq!(registry("localhost"), None);
    }

    #[test]
    fn splitting() {
        let hex = format!("sha256:{}", "a".repeat(64));
        let r = |repository, tag, digest| Parts { repository, tag, digest };
        assert_eq!(Parts::of("foo"), r("foo", None, None));
        assert_eq!(Parts::of("foo:1"), r("foo", Some("1"), None));
        assert_eq!(Parts::of("localhost:5000/foo"), r("localhost:5000/foo", None, None));
        assert_eq!(Parts::of("localhost:5000/foo:1"), r("localhost:5000/foo", Some("1"), None));
        let full = format!("reg:5000/ns/foo:1.0@{hex}");
        assert_eq!(Parts::of(&full), r("reg:5000/ns/foo", Some("1.0"), Some(hex.as_str())));
        assert_eq!(Parts::of(&format!("foo@{hex}")), r("foo", None, Some(hex.as_str())));
        assert_eq!(Parts::of("foo:2:1.0-1"), r("foo", Some("2:1.0-1"), None));
        assert_eq!(Parts::of("localhost:5000/ns/foo:2:1.0-1"), r("localhost:5000/ns/foo", Some("2:1.0-1"), None));
    }

    #[test]
    fn whole_references() {
        let parsed = Reference::parse("localhost:5000/ns/foo:1").unwrap();
        assert_eq!(
            (parsed.repository(), parsed.registry(), parsed.path(), parsed.tag()),
            ("localhost:5000/ns/foo", Some("localhost:5000"), "ns/foo", Some("1"))
        );
        assert_eq!(parsed.to_string(), "localhost:5000/ns/foo:1");
        assert_eq!(parsed.with_tag("latest").unwrap().to_string(), "localhost:5000/ns/foo:latest");
        assert!(parsed.with_tag("a b").is_err());
        assert_eq!(Reference::parse("foo").unwrap().path(), "foo");
        let digest = format!("reg:5000/ns/foo:1.0@sha256:{}", "a".repeat(64));
        assert_eq!(Reference::parse(&digest).unwrap().to_string(), digest);
        for bad in ["foo:bar:baz", "Foo:1", "foo:0.0.1~alpha1", "foo@sha256:xyz", ""] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        const TOKENS: &[&str] =
            &["localhost:5000", "reg.example", "/", ":", "@", "sha256:", "ns", "name", "1.0", "-", "_", ".", "["];

        proptest! {
            #[test]
            fn parsing_never_panics_and_round_trips(text in crate::fuzz::text(TOKENS)) {
                let parts = Parts::of(&text);
                prop_assert!(text.starts_with(parts.repository));
                if let Ok(reference) = Reference::parse(&text) {
                    prop_assert_eq!(reference.to_string(), text.clone());
                    prop_assert_eq!(Reference::parse(&reference.to_string()), Ok(reference.clone()));
                    prop_assert!(reference.repository().ends_with(reference.path()));
                }
            }
        }
    }
}
