//! OCI platforms (`linux/amd64`, `linux/arm/v7`): the one home of their grammar and normalisation, which
//! follow containerd's `platforms.Parse` and `platforms.Normalize` (github.com/containerd/platforms), so that
//! every spelling Docker accepts for a platform (`arm64`, `linux/aarch64`, `linux/arm64/v8`) is one value here.
//!
//! Two deviations, both because a tree's files must mean the same on every machine that reads them: containerd
//! completes a lone OS (`linux`) with the architecture of the machine it runs on, and a lone architecture
//! (`arm64`) with that machine's OS. Here a lone OS is refused, and a lone architecture means Linux, the only
//! OS of the images imgraph builds. Beyond containerd's grammar, the normalised OS, architecture and variant
//! must be letters and digits (as every OS and architecture Go knows, and every variant, are), because they
//! become part of image tags ([`Platform::slug`]); and OS versions and features (`windows(10.0.17763)`), which
//! Linux images do not have, are refused.

use std::fmt;

/// What an invalid platform's message suggests instead.
const VALID_FORMS: &str = "write OS/ARCH or OS/ARCH/VARIANT (linux/amd64, linux/arm64, linux/arm/v7), \
                           or an architecture alone for Linux (arm64)";

/// The longest platform accepted, as written: far above any real one (`linux/mips64p32le` is 17), and short
/// enough that its slug fits in a Docker tag (128 characters) beside a version.
const MAX_LENGTH: usize = 64;

/// An OCI platform, normalised as containerd's `platforms.Normalize` does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Parses a platform as containerd's `platforms.Parse` does, then normalises it (see the module's
    /// documentation for the deviations). The error says what is wrong and lists the valid forms.
    pub fn parse(text: &str) -> Result<Platform, String> {
        parse(text).map_err(|why| {
            // A huge name (a control file may hold a megabyte of one) is shown by its start only.
            let shown: String = text.chars().take(MAX_LENGTH).collect();
            let more = if shown.len() < text.len() { "…" } else { "" };
            format!("`{}{more}` is not a valid platform: {why}; {VALID_FORMS}", shown.escape_debug())
        })
    }

    /// The platform as one name usable inside a Docker tag or a repository path component: lowercase letters,
    /// digits and `-` between the parts (`linux-arm64`, `linux-arm-v7`). Distinct platforms have distinct slugs,
    /// since each part is letters and digits.
    pub fn slug(&self) -> String {
        let mut slug = format!("{}-{}", self.os, self.architecture);
        if let Some(variant) = &self.variant {
            slug.push('-');
            slug.push_str(variant);
        }
        slug
    }

    /// The variant Docker writes in manifest lists / image configs (arm64 -> Some("v8"), arm -> the variant,
    /// else the normalised one).
    pub fn oci_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            // Normalisation drops arm64's default variant; Docker's manifests spell it out.
            ("arm64", None) => Some("v8"),
            (_, variant) => variant,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Config files write platforms as strings. Parsed while the deserializer visits the string, so that YAML and
/// TOML locate an invalid one at that string.
impl<'de> serde::Deserialize<'de> for Platform {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Platform;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a platform such as linux/amd64")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Platform, E> {
                Platform::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// containerd's `Parse` then `Normalize`; the error says why, without the text.
fn parse(text: &str) -> Result<Platform, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.len() > MAX_LENGTH {
        return Err(format!("it is {} bytes long (at most {MAX_LENGTH} are allowed)", text.len()));
    }
    if text.contains('*') {
        return Err("wildcards are not supported".into());
    }
    let mut parts = text.splitn(4, '/');
    let (os, architecture, variant) = (parts.next().unwrap_or_default(), parts.next(), parts.next());
    if parts.next().is_some() {
        let count = text.split('/').count();
        return Err(format!("it has {count} `/`-separated components (at most 3 are allowed)"));
    }
    if os.contains('(') {
        return Err("OS versions and features, such as `windows(10.0.17763)`, are not supported".into());
    }
    // containerd's `osRe` (without the options refused above) for the OS, `specifierRe` for the rest.
    check_component(os, "the OS", |c| c.is_ascii_alphanumeric() || c == '_' || c == '-')?;
    for (part, what) in [(architecture, "the architecture"), (variant, "the variant")] {
        if let Some(part) = part {
            check_component(part, what, |c| c.is_ascii_alphanumeric() || "_.-".contains(c))?;
        }
    }
    let platform = match architecture {
        None => {
            if is_known_os(&normalize_os(os)) {
                return Err(format!(
                    "`{os}` is an OS without an architecture (containerd would take the architecture of the \
                     machine reading it)"
                ));
            }
            let (architecture, variant) = normalize_arch(os, "");
            if !is_known_arch(&architecture) {
                return Err(format!("`{os}` is no known OS or architecture"));
            }
            Platform { os: "linux".into(), architecture, variant: some(variant) }
        }
        Some(architecture) => {
            let (architecture, variant) = normalize_arch(architecture, variant.unwrap_or_default());
            Platform { os: normalize_os(os), architecture, variant: some(variant) }
        }
    };
    let parts = [Some(&platform.os), Some(&platform.architecture), platform.variant.as_ref()];
    if let Some(part) = parts.into_iter().flatten().find(|p| !p.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return Err(format!(
            "`{part}` is not made of letters and digits only, as the names of a platform must be here (they \
             become part of image tags)"
        ));
    }
    Ok(platform)
}

fn check_component(part: &str, what: &str, allowed: impl Fn(char) -> bool) -> Result<(), String> {
    if part.is_empty() {
        return Err(format!("{what} is empty"));
    }
    match part.chars().find(|&c| !allowed(c)) {
        Some(c) => Err(format!("{what} `{}` has the character `{}`", part.escape_debug(), c.escape_debug())),
        None => Ok(()),
    }
}

fn some(variant: String) -> Option<String> {
    (!variant.is_empty()).then_some(variant)
}

/// containerd's `normalizeOS` (an empty OS, which it replaces by the machine's, is refused before).
fn normalize_os(os: &str) -> String {
    let os = os.to_ascii_lowercase();
    if os == "macos" { "darwin".into() } else { os }
}

/// containerd's `normalizeArch`: the canonical architecture and variant.
fn normalize_arch(architecture: &str, variant: &str) -> (String, String) {
    let (architecture, variant) = (architecture.to_ascii_lowercase(), variant.to_ascii_lowercase());
    let (architecture, variant) = match (architecture.as_str(), variant.as_str()) {
        ("i386", _) => ("386", ""),
        ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64", ""),
        ("x86_64" | "x86-64" | "amd64", variant) => ("amd64", variant),
        ("aarch64" | "arm64", "8" | "v8" | "v8.0") => ("arm64", ""),
        ("aarch64" | "arm64", "9" | "9.0" | "v9.0") => ("arm64", "v9"),
        ("aarch64" | "arm64", variant) => ("arm64", variant),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "" | "7") => ("arm", "v7"),
        ("arm", "5") => ("arm", "v5"),
        ("arm", "6") => ("arm", "v6"),
        ("arm", "8") => ("arm", "v8"),
        (architecture, variant) => (architecture, variant),
    };
    (architecture.to_owned(), variant.to_owned())
}

/// containerd's `isKnownOS` (Go's `syslist.go`).
fn is_known_os(os: &str) -> bool {
    matches!(
        os,
        "aix"
            | "android"
            | "darwin"
            | "dragonfly"
            | "freebsd"
            | "hurd"
            | "illumos"
            | "ios"
            | "js"
            | "linux"
            | "nacl"
            | "netbsd"
            | "openbsd"
            | "plan9"
            | "solaris"
            | "windows"
            | "zos"
    )
}

/// containerd's `isKnownArch` (Go's `syslist.go`).
fn is_known_arch(architecture: &str) -> bool {
    matches!(
        architecture,
        "386"
            | "amd64"
            | "amd64p32"
            | "arm"
            | "armbe"
            | "arm64"
            | "arm64be"
            | "ppc64"
            | "ppc64le"
            | "loong64"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "mips64p32"
            | "mips64p32le"
            | "ppc"
            | "riscv"
            | "riscv64"
            | "s390"
            | "s390x"
            | "sparc"
            | "sparc64"
            | "wasm"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform { os: os.into(), architecture: architecture.into(), variant: variant.map(str::to_owned) }
    }

    fn parsed(text: &str) -> Platform {
        Platform::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// containerd's `TestParseSelector`, each expectation normalised (as its matcher compares platforms), with
    /// the machine's OS and architecture taken as Linux's and refused, as the module says.
    #[test]
    fn containerd_parse_table() {
        let cases: &[(&str, Platform, &[&str], &str)] = &[
            // (input, normalised, what else means the same, Display)
            (
                "linux/arm64",
                platform("linux", "arm64", None),
                &["linux/aarch64", "linux/aarch64/v8", "linux/arm64/v8", "arm64", "aarch64"],
                "linux/arm64",
            ),
            ("linux/arm64/v8", platform("linux", "arm64", None), &["linux/arm64", "linux/arm64/8"], "linux/arm64"),
            (
                "linux/arm",
                platform("linux", "arm", Some("v7")),
                &["linux/arm/v7", "linux/armhf", "linux/arm/7", "arm", "armhf"],
                "linux/arm/v7",
            ),
            ("linux/arm/v6", platform("linux", "arm", Some("v6")), &["linux/armel", "armel"], "linux/arm/v6"),
            ("linux/arm/v7", platform("linux", "arm", Some("v7")), &["linux/arm", "linux/armhf"], "linux/arm/v7"),
            ("arm", platform("linux", "arm", Some("v7")), &[], "linux/arm/v7"),
            ("armel", platform("linux", "arm", Some("v6")), &[], "linux/arm/v6"),
            ("armhf", platform("linux", "arm", Some("v7")), &[], "linux/arm/v7"),
            ("Aarch64", platform("linux", "arm64", None), &[], "linux/arm64"),
            ("x86_64", platform("linux", "amd64", None), &["x86-64", "amd64", "linux/amd64/v1"], "linux/amd64"),
            ("Linux/x86_64", platform("linux", "amd64", None), &["LINUX/AMD64"], "linux/amd64"),
            ("i386", platform("linux", "386", None), &["linux/i386/v2", "386"], "linux/386"),
            ("s390x", platform("linux", "s390x", None), &[], "linux/s390x"),
            ("linux/s390x", platform("linux", "s390x", None), &[], "linux/s390x"),
            // Not in containerd's table, but what its normalisation gives.
            ("linux/amd64/v2", platform("linux", "amd64", Some("v2")), &["linux/x86_64/V2"], "linux/amd64/v2"),
            (
                "linux/arm64/v9",
                platform("linux", "arm64", Some("v9")),
                &["linux/arm64/9", "linux/aarch64/v9.0"],
                "linux/arm64/v9",
            ),
            ("linux/arm/5", platform("linux", "arm", Some("v5")), &[], "linux/arm/v5"),
            ("linux/arm/8", platform("linux", "arm", Some("v8")), &[], "linux/arm/v8"),
            ("macOS/arm64", platform("darwin", "arm64", None), &["darwin/aarch64"], "darwin/arm64"),
            ("windows/amd64", platform("windows", "amd64", None), &[], "windows/amd64"),
            // An unknown OS with an architecture is accepted, as containerd does.
            ("plan10/riscv64", platform("plan10", "riscv64", None), &[], "plan10/riscv64"),
        ];
        for (input, expected, same, display) in cases {
            assert_eq!(&parsed(input), expected, "{input}");
            assert_eq!(parsed(input).to_string(), *display, "{input}");
            assert_eq!(parsed(display), *expected, "{input}: the display round-trips");
            for other in *same {
                assert_eq!(&parsed(other), expected, "{other} is {input}");
            }
        }
    }

    /// containerd's `TestParseSelectorInvalid`, its skipped wildcard cases, and what imgraph refuses besides.
    #[test]
    fn invalid_platforms_say_why_and_what_is_valid() {
        let cases = [
            ("", "it is empty"),
            ("/linux/arm", "the OS is empty"),
            ("linux/arm/", "the variant is empty"),
            ("linux//arm", "the architecture is empty"),
            ("linux /arm", "the OS `linux ` has the character ` `"),
            ("linux/&arm", "the architecture `&arm` has the character `&`"),
            ("linux/arm/foo/bar", "it has 4 `/`-separated components (at most 3 are allowed)"),
            ("linux/arm64\n", "the architecture `arm64\\n` has the character `\\n`"),
            ("lin.ux/amd64", "the OS `lin.ux` has the character `.`"),
            ("*", "wildcards are not supported"),
            ("linux/*", "wildcards are not supported"),
            ("*/arm64", "wildcards are not supported"),
            ("foo", "`foo` is no known OS or architecture"),
            ("linux", "`linux` is an OS without an architecture"),
            ("macOS", "`macOS` is an OS without an architecture"),
            ("windows", "`windows` is an OS without an architecture"),
            ("windows(10.0.17763)", "OS versions and features"),
            ("windows(10.0.17763+win32k)/amd64", "OS versions and features"),
            ("linux(+gpu)/amd64", "OS versions and features"),
            ("linux/arm_64", "`arm_64` is not made of letters and digits only"),
            ("linux/amd64/v2.1", "`v2.1` is not made of letters and digits only"),
            ("my-os/amd64", "`my-os` is not made of letters and digits only"),
        ];
        for (input, why) in cases {
            let error = Platform::parse(input).unwrap_err();
            assert!(error.contains(why), "{input:?}: {error}");
            assert!(error.ends_with(VALID_FORMS), "{input:?}: {error}");
        }
        let long = format!("linux/{}", "a".repeat(60));
        assert!(Platform::parse(&long).unwrap_err().contains("66 bytes long (at most 64"));
        let huge = Platform::parse(&"x".repeat(1 << 20)).unwrap_err();
        assert!(huge.starts_with(&format!("`{}…` is not a valid platform: it is 1048576 bytes long", "x".repeat(64))));
        assert_eq!(
            Platform::parse("linux/&arm").unwrap_err(),
            format!(
                "`linux/&arm` is not a valid platform: the architecture `&arm` has the character `&`; {VALID_FORMS}"
            )
        );
    }

    #[test]
    fn slugs_and_oci_variants() {
        let cases = [
            ("linux/amd64", "linux-amd64", None),
            ("linux/arm64", "linux-arm64", Some("v8")),
            ("linux/arm64/v9", "linux-arm64-v9", Some("v9")),
            ("linux/arm/v7", "linux-arm-v7", Some("v7")),
            ("armel", "linux-arm-v6", Some("v6")),
            ("linux/amd64/v3", "linux-amd64-v3", Some("v3")),
            ("linux/386", "linux-386", None),
        ];
        for (input, slug, variant) in cases {
            let platform = parsed(input);
            assert_eq!(platform.slug(), slug, "{input}");
            assert_eq!(platform.oci_variant(), variant, "{input}");
        }
    }

    #[test]
    fn sorted_and_serialised_as_displayed() {
        let mut platforms: Vec<Platform> = ["linux/arm64", "linux/arm/v7", "linux/amd64"].map(parsed).into();
        platforms.sort();
        assert_eq!(serde_json::to_string(&platforms).unwrap(), r#"["linux/amd64","linux/arm/v7","linux/arm64"]"#);
        let back: Vec<Platform> = serde_json::from_str(r#"["x86_64", "linux/aarch64"]"#).unwrap();
        assert_eq!(back, [parsed("linux/amd64"), parsed("linux/arm64")]);
        let error = serde_json::from_str::<Vec<Platform>>(r#"["linux"]"#).unwrap_err().to_string();
        assert!(error.contains("`linux` is not a valid platform"), "{error}");
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        const TOKENS: &[&str] = &[
            "linux", "Linux", "windows", "macos", "/", "amd64", "x86_64", "x86-64", "arm64", "aarch64", "arm", "armhf",
            "armel", "i386", "386", "s390x", "v7", "v8", "8", "9.0", "v1", "(", ")", "+", "*", "_", ".", "-",
        ];

        proptest! {
            #[test]
            fn parsing_never_panics_and_round_trips(text in crate::fuzz::text(TOKENS)) {
                if let Ok(platform) = Platform::parse(&text) {
                    prop_assert_eq!(Platform::parse(&platform.to_string()), Ok(platform.clone()));
                    let slug = platform.slug();
                    prop_assert!(slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                    prop_assert!(!slug.starts_with('-') && !slug.ends_with('-') && !slug.contains("--"), "{}", slug);
                }
            }

            #[test]
            fn every_well_formed_platform_round_trips(
                os in "[a-zA-Z][a-zA-Z0-9]{0,9}",
                architecture in "[a-zA-Z0-9]{1,12}",
                variant in proptest::option::of("[a-zA-Z0-9]{1,6}"),
            ) {
                let text = match &variant {
                    Some(variant) => format!("{os}/{architecture}/{variant}"),
                    None => format!("{os}/{architecture}"),
                };
                let platform = Platform::parse(&text).map_err(TestCaseError::fail)?;
                prop_assert_eq!(Platform::parse(&platform.to_string()), Ok(platform.clone()));
                prop_assert_eq!(platform.os, normalize_os(&os));
            }
        }
    }
}
