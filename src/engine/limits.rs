//! docker-pkg's `container_limits` (`memory`, `memswap`, `cpushares`, `cpusetcpus`): parsed once, when the
//! config is loaded, into the values the build API takes.

use bollard::query_parameters::BuildImageOptionsBuilder;

/// The resource limits of every build, from the config's `container_limits` string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerLimits {
    memory: Option<i32>,
    /// `-1` is Docker's "unlimited swap".
    memswap: Option<i32>,
    cpushares: Option<i32>,
    cpusetcpus: Option<String>,
}

impl ContainerLimits {
    /// docker-pkg's `k=v,k=v` with keys memory, memswap, cpushares, cpusetcpus; sizes as Docker reads them
    /// (`512m`, `4g`).
    pub fn parse(spec: &str) -> Result<Self, String> {
        const KEYS: [&str; 4] = ["memory", "memswap", "cpushares", "cpusetcpus"];
        let mut limits = Self::default();
        for item in spec.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(format!("container_limits: `{item}` is not of the form key=value"));
            };
            let (key, value) = (key.trim(), value.trim());
            let invalid = |why: &str| format!("container_limits: {key}={value}: {why}");
            match key {
                "memory" => limits.memory = Some(bytes_i32(value).map_err(|e| invalid(&e))?),
                "memswap" if value == "-1" => limits.memswap = Some(-1),
                "memswap" => limits.memswap = Some(bytes_i32(value).map_err(|e| invalid(&e))?),
                "cpushares" => limits.cpushares = Some(value.parse().map_err(|_| invalid("not an integer"))?),
                "cpusetcpus"
                    if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '-') =>
                {
                    limits.cpusetcpus = Some(value.to_owned());
                }
                "cpusetcpus" => return Err(invalid("expected CPU numbers and ranges, like 0-3,5")),
                _ => {
                    return Err(format!("container_limits: unknown key `{key}` (expected one of {})", KEYS.join(", ")));
                }
            }
        }
        Ok(limits)
    }

    /// The build options with these limits set.
    pub(super) fn apply(&self, mut options: BuildImageOptionsBuilder) -> BuildImageOptionsBuilder {
        if let Some(memory) = self.memory {
            options = options.memory(memory);
        }
        if let Some(memswap) = self.memswap {
            options = options.memswap(memswap);
        }
        if let Some(cpushares) = self.cpushares {
            options = options.cpushares(cpushares);
        }
        if let Some(cpus) = &self.cpusetcpus {
            options = options.cpusetcpus(cpus);
        }
        options
    }
}

/// A size in bytes as the API client takes it: bollard 0.21 types memory limits as `i32`.
fn bytes_i32(value: &str) -> Result<i32, String> {
    let bytes = ram_in_bytes(value)?;
    i32::try_from(bytes)
        .map_err(|_| format!("{bytes} bytes is more than the Docker API client can pass (at most {} bytes)", i32::MAX))
}

/// Docker's `units.RAMInBytes`: a decimal number, an optional space, and an optional binary unit (`b`, `k`, `m`, `g`,
/// `t`, `p`, case-insensitive, optionally followed by `i` and/or `b`: `512m`, `4g`, `1.5GiB`, `1024`).
fn ram_in_bytes(value: &str) -> Result<i64, String> {
    let end = value.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(value.len());
    let (number, unit) = value.split_at(end);
    let invalid = || format!("invalid size `{value}` (expected a number and a unit, like 512m or 4g)");
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') || number.matches('.').count() > 1 {
        return Err(invalid());
    }
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let multiplier: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "p" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(invalid()),
    };
    let bytes = number * multiplier;
    if bytes >= i64::MAX as f64 {
        return Err(invalid());
    }
    // Go truncates the same way: int64(size * float64(unit)).
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_sizes() {
        assert_eq!(ram_in_bytes("1024"), Ok(1024));
        assert_eq!(ram_in_bytes("512m"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("512 MB"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("4g"), Ok(4 << 30));
        assert_eq!(ram_in_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(ram_in_bytes("10b"), Ok(10));
        for bad in ["", "m", "-1", "1..5m", ".5m", "5x", "5 m b", "1e3"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_what_the_api_client_cannot_pass() {
        assert_eq!(bytes_i32("1g"), Ok(1 << 30));
        assert!(bytes_i32("4g").unwrap_err().contains("at most 2147483647"));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let apply =
            |spec: &str| ContainerLimits::parse(spec).map(|l| l.apply(BuildImageOptionsBuilder::default()).build());
        let options = apply("memory=512m, cpushares=512").expect("valid");
        assert_eq!((options.memory, options.cpushares), (Some(512 << 20), Some(512)));
        assert_eq!(apply("memswap=-1").expect("valid").memswap, Some(-1));
        // docker-pkg splits the whole string on commas, so a CPU list cannot hold one.
        assert_eq!(apply("cpusetcpus=0-1").expect("valid").cpusetcpus.as_deref(), Some("0-1"));
        assert_eq!(apply("").expect("valid").memory, None);
        for (spec, key) in [
            ("memory=lots", "memory"),
            ("cpushares=x", "cpushares"),
            ("cpusetcpus=a", "cpusetcpus"),
            ("cpu=1", "cpu"),
            ("memory", "memory"),
            ("memory=4g", "memory"),
        ] {
            let err = apply(spec).expect_err("invalid");
            assert!(err.contains(key), "{err}");
        }
    }
}
