//! docker-pkg's `container_limits` (`memory`, `memswap`, `cpushares`, `cpusetcpus`) as the build API takes them.

use std::collections::BTreeMap;

use bollard::query_parameters::BuildImageOptionsBuilder;

use super::BuildError;

/// Applies `limits` to the build options; an unknown key or a bad value is a [`BuildError::Context`].
pub fn apply(
    mut options: BuildImageOptionsBuilder,
    limits: &BTreeMap<String, String>,
) -> Result<BuildImageOptionsBuilder, BuildError> {
    for (key, value) in limits {
        let value = value.trim();
        let invalid = |why: &str| BuildError::Context(format!("container limit {key}={value}: {why}"));
        options = match key.as_str() {
            "memory" => options.memory(bytes_i32(value).map_err(|e| invalid(&e))?),
            // `-1` is Docker's "unlimited swap".
            "memswap" if value == "-1" => options.memswap(-1),
            "memswap" => options.memswap(bytes_i32(value).map_err(|e| invalid(&e))?),
            "cpushares" => options.cpushares(value.parse().map_err(|_| invalid("not an integer"))?),
            "cpusetcpus" if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '-') => {
                options.cpusetcpus(value)
            }
            "cpusetcpus" => return Err(invalid("expected CPU numbers and ranges, like 0-3,5")),
            _ => return Err(invalid("unknown key (expected memory, memswap, cpushares or cpusetcpus)")),
        };
    }
    Ok(options)
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
        let limits = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let apply = |l| apply(BuildImageOptionsBuilder::default(), &l).map(|o| o.build());
        let options = apply(limits("memory", "512m")).expect("valid");
        assert_eq!(options.memory, Some(512 << 20));
        assert_eq!(apply(limits("memswap", "-1")).expect("valid").memswap, Some(-1));
        assert_eq!(apply(limits("cpushares", "512")).expect("valid").cpushares, Some(512));
        assert_eq!(apply(limits("cpusetcpus", "0-1,3")).expect("valid").cpusetcpus.as_deref(), Some("0-1,3"));
        for (k, v) in [("memory", "lots"), ("cpushares", "x"), ("cpusetcpus", "a"), ("cpu", "1")] {
            let err = apply(limits(k, v)).expect_err("invalid");
            assert!(matches!(&err, BuildError::Context(m) if m.contains(k)), "{err}");
        }
    }
}
