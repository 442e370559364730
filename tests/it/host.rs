//! `scripts/with-test-env.sh` leaves the host's network as it found it. The private dockerd once ran with
//! `--bridge=none`, which makes dockerd 20.10 delete the host's `docker0`; it now gets a bridge of its own, which
//! the script deletes on exit. This test snapshots the host's network state, runs the environment (nested inside
//! the one the suite runs in, if any: it has its own temp dir, sockets and bridge) with `true` as its command, and
//! compares: interfaces, addresses, routes, forwarding and bridge-netfilter sysctls, iptables rules.
//!
//! The host is shared: other test environments (this suite's own outer one, other work trees' runs) come and go
//! meanwhile. Their bridges (`imgraph-XXXXXX` and the second daemon's `imgraph2-XXXXXX`, while
//! `/tmp/imgraph-test.XXXXXX` exists) and the veth pairs of their containers are left out of the comparison, along
//! with the addresses and routes on those interfaces.
//!
//! Also here: the environment's arm64 emulation and second daemon work.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{docker, test_env};

/// Sysctls compared (read from /proc/sys; absent ones are recorded as absent).
const SYSCTLS: &[&str] = &[
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/conf/default/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "net/ipv6/conf/all/forwarding",
    "net/ipv6/conf/default/forwarding",
    "net/ipv6/conf/all/disable_ipv6",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/bridge/bridge-nf-call-arptables",
];

/// What `scripts/with-test-env.sh` needs on `PATH`, as it checks at its start, plus bash, busybox and the arm64
/// emulator that `update-binfmts` registers.
const ENV_TOOLS: &[&str] = &[
    "bash",
    "ip",
    "dockerd",
    "containerd",
    "containerd-shim-runc-v2",
    "runc",
    "docker",
    "curl",
    "openssl",
    "setsid",
    "mount",
    "umount",
    "update-binfmts",
    "flock",
    "busybox",
    "qemu-aarch64-static",
];

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn test_env_leaves_the_host_network_as_it_found_it() {
    require_root_and_tools();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/with-test-env.sh");
    let before = snapshot();

    let output = Command::new("bash")
        .arg(&script)
        .arg("true")
        // The outer environment's log copy must not be overwritten by this one's logs.
        .env_remove("IMGRAPH_TEST_LOG_DIR")
        .output()
        .expect("run with-test-env.sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bash {} true failed ({}):\n{stderr}", script.display(), output.status);

    // Everything the script changed is undone before it exits; a few retries only ride out what other test
    // environments do to the shared host at the same moment.
    let mut differences = compare(&before, &snapshot());
    for _ in 0..5 {
        if differences.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        differences = compare(&before, &snapshot());
    }
    assert!(
        differences.is_empty(),
        "the host's network state changed across `bash {} true`:\n{}\n--- its stderr\n{stderr}",
        script.display(),
        differences.join("\n")
    );
}

/// Both daemons run the arm64 base image under emulation (and the host's base natively), and the second daemon is
/// one of its own.
#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn test_env_runs_arm64_images_in_both_daemons() {
    let env = test_env();
    for host in [&env.docker_host, &env.docker_host_2] {
        let run = |options: &[&str], image: &str| {
            let args = [&["-H", host, "run", "--rm", "--network", "none"], options, &[image, "uname", "-m"]].concat();
            docker(&args)
        };
        let arm64 = run(&["--platform", "linux/arm64"], &env.arm64_base_image);
        assert_eq!(arm64, "aarch64", "uname -m in {} on {host}", env.arm64_base_image);
        assert_eq!(run(&[], &env.base_image), std::env::consts::ARCH, "uname -m in {} on {host}", env.base_image);
    }
    let version = docker(&["-H", &env.docker_host_2, "version", "--format", "{{.Server.Version}}"]);
    assert!(!version.is_empty(), "the second daemon ({}) reports no version", env.docker_host_2);
    let root_dir = |host: &str| docker(&["-H", host, "info", "--format", "{{.DockerRootDir}}"]);
    assert_ne!(root_dir(&env.docker_host), root_dir(&env.docker_host_2), "both hosts are the same daemon");
}

/// Root and every tool present, else a failure saying what is missing.
fn require_root_and_tools() {
    let missing: Vec<&str> = ENV_TOOLS.iter().copied().filter(|tool| find_tool(tool).is_none()).collect();
    assert!(is_root(), "the host network test must run as root (it starts dockerd): run `scripts/test.sh`");
    assert!(missing.is_empty(), "missing tools: {} (scripts/install-test-deps.sh installs them)", missing.join(", "));
}

fn is_root() -> bool {
    // The effective uid is the second field of the `Uid:` line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1)) == Some("0")
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        use std::os::unix::fs::PermissionsExt;
        candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// One section of the snapshot: a name and its lines, sorted.
type Section = (String, BTreeSet<String>);

/// The host's network state, normalised: no interface indexes, lifetimes or counters, and nothing of other live
/// test environments.
fn snapshot() -> Vec<Section> {
    let links = run_tool("ip", &["-o", "link", "show"]);
    let ignored = ignored_interfaces(&links);
    let mut sections = vec![
        ("interfaces (ip -o link)".to_owned(), links.lines().filter_map(|l| link_line(l, &ignored)).collect()),
        (
            "addresses (ip -o address)".to_owned(),
            run_tool("ip", &["-o", "address", "show"]).lines().filter_map(|l| address_line(l, &ignored)).collect(),
        ),
    ];
    for (name, family) in [("IPv4 routes (ip -4 route show table all)", "-4"), ("IPv6 routes", "-6")] {
        let routes = run_tool("ip", &["-o", family, "route", "show", "table", "all"]);
        sections.push((name.to_owned(), routes.lines().filter_map(|l| route_line(l, &ignored)).collect()));
    }
    sections.push((
        "sysctls".to_owned(),
        SYSCTLS
            .iter()
            .map(|key| {
                let value = std::fs::read_to_string(Path::new("/proc/sys").join(key));
                format!("{} = {}", key.replace('/', "."), value.as_deref().map_or("(absent)", str::trim))
            })
            .collect(),
    ));
    for tool in ["iptables-save", "ip6tables-save"] {
        if find_tool(tool).is_some() {
            sections.push((tool.to_owned(), run_tool(tool, &[]).lines().filter_map(iptables_line).collect()));
        }
    }
    sections
}

/// Runs a tool, asserting success; its stdout.
fn run_tool(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(output.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The fields of one `ip -o link` line: index, name (`name@peer` for veths), and the rest split on whitespace.
fn link_fields(line: &str) -> Option<(&str, Vec<&str>)> {
    let (_index, rest) = line.split_once(": ")?;
    let (name, rest) = rest.split_once(": ")?;
    Some((name.split('@').next().unwrap_or(name), words(rest)))
}

/// The words of a line; `ip -o` ends each folded line with a backslash, glued to the last word or alone.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().map(|w| w.trim_end_matches('\\')).filter(|w| !w.is_empty()).collect()
}

/// The value after `key` among `words`.
fn after<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words.iter().position(|w| *w == key).and_then(|i| words.get(i + 1).copied())
}

/// Interfaces of other live test environments: bridges `imgraph-XXXXXX` and `imgraph2-XXXXXX` whose temp dir
/// `/tmp/imgraph-test.XXXXXX` exists, and veths (Docker's container links) on them or on no bridge yet.
fn ignored_interfaces(links: &str) -> BTreeSet<String> {
    let live_bridge = |name: &str| {
        ["imgraph-", "imgraph2-"]
            .iter()
            .filter_map(|prefix| name.strip_prefix(prefix))
            .any(|suffix| Path::new(&format!("/tmp/imgraph-test.{suffix}")).is_dir())
    };
    let mut ignored: BTreeSet<String> =
        links.lines().filter_map(link_fields).map(|(n, _)| n).filter(|n| live_bridge(n)).map(str::to_owned).collect();
    for (name, words) in links.lines().filter_map(link_fields) {
        // A veth pair exists without a master for a moment while Docker sets it up or tears it down.
        if name.starts_with("veth") && after(&words, "master").is_none_or(|m| ignored.contains(m)) {
            ignored.insert(name.to_owned());
        }
    }
    ignored
}

/// `name <flags> mtu N [master M] state S link/TYPE ADDRESS`, without the index or queue settings.
fn link_line(line: &str, ignored: &BTreeSet<String>) -> Option<String> {
    let (name, words) = link_fields(line)?;
    if ignored.contains(name) {
        return None;
    }
    let mut kept = vec![name.to_owned(), words.first().copied().unwrap_or_default().to_owned()];
    for key in ["mtu", "master", "state"] {
        if let Some(value) = after(&words, key) {
            kept.push(format!("{key} {value}"));
        }
    }
    if let Some(link) = words.iter().position(|w| w.starts_with("link/")) {
        kept.extend(words[link..].iter().take(2).map(|w| (*w).to_owned()));
    }
    Some(kept.join(" "))
}

/// `name family address/len ...` without the index and the (counting down) lifetimes.
fn address_line(line: &str, ignored: &BTreeSet<String>) -> Option<String> {
    let (_index, rest) = line.split_once(": ")?;
    let words = words(rest);
    if words.first().is_some_and(|name| ignored.contains(*name)) {
        return None;
    }
    Some(drop_valued(&words, &["valid_lft", "preferred_lft"]).join(" "))
}

/// A route, without its (counting down) expiry; none through an ignored interface.
fn route_line(line: &str, ignored: &BTreeSet<String>) -> Option<String> {
    let words = words(line);
    if words.windows(2).any(|pair| pair[0] == "dev" && ignored.contains(pair[1])) {
        return None;
    }
    Some(drop_valued(&words, &["expires"]).join(" "))
}

/// `words` without each of `keys` and the value after it.
fn drop_valued(words: &[&str], keys: &[&str]) -> Vec<String> {
    let mut kept = Vec::new();
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        if keys.contains(word) {
            iter.next();
        } else {
            kept.push((*word).to_owned());
        }
    }
    kept
}

/// An iptables-save line without comments (they carry a date) and packet/byte counters (`[0:0]`).
fn iptables_line(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let kept: Vec<&str> = line
        .split_whitespace()
        .filter(|w| {
            !(w.starts_with('[') && w.ends_with(']') && w[1..w.len() - 1].split(':').all(|n| n.parse::<u64>().is_ok()))
        })
        .collect();
    Some(kept.join(" "))
}

/// What changed, section by section: `- line` gone, `+ line` new.
fn compare(before: &[Section], after: &[Section]) -> Vec<String> {
    let mut differences = Vec::new();
    for ((name, old), (_, new)) in before.iter().zip(after) {
        let gone = old.difference(new).map(|l| format!("  - {l}"));
        let added = new.difference(old).map(|l| format!("  + {l}"));
        let lines: Vec<String> = gone.chain(added).collect();
        if !lines.is_empty() {
            differences.push(format!("{name}:"));
            differences.extend(lines);
        }
    }
    differences
}

#[test]
fn snapshot_lines_are_normalised() {
    let ignored: BTreeSet<String> = ["imgraph-AbC123".to_owned(), "veth1a2b3c4".to_owned()].into();
    let link = "4: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 qdisc pfifo_fast state UP mode DEFAULT group \
                default qlen 1000\\    link/ether 02:fc:00:00:00:01 brd ff:ff:ff:ff:ff:ff";
    assert_eq!(
        link_line(link, &ignored).as_deref(),
        Some("eth0 <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 state UP link/ether 02:fc:00:00:00:01")
    );
    let veth = "9: veth1a2b3c4@if8: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master imgraph-AbC123 \
                state UP mode DEFAULT group default\\    link/ether 52:aa:bb:cc:dd:ee brd ff:ff:ff:ff:ff:ff";
    assert_eq!(link_line(veth, &ignored), None);
    let address = "4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global dynamic eth0\\       valid_lft \
                   86391sec preferred_lft 86391sec";
    assert_eq!(
        address_line(address, &ignored).as_deref(),
        Some("eth0 inet 192.0.2.2/24 brd 192.0.2.255 scope global dynamic eth0")
    );
    assert_eq!(address_line("7: imgraph-AbC123    inet 10.1.2.1/24 scope global noprefixroute", &ignored), None);
    assert_eq!(
        route_line("2001:db8::/64 dev eth0 proto ra metric 100 expires 86391sec pref medium", &ignored).as_deref(),
        Some("2001:db8::/64 dev eth0 proto ra metric 100 pref medium")
    );
    assert_eq!(route_line("local 10.1.2.1 dev imgraph-AbC123 table local proto kernel", &ignored), None);
    assert_eq!(iptables_line("# Generated by iptables-save v1.8.9 on Mon Nov 23 10:00:00 2026"), None);
    assert_eq!(iptables_line(":INPUT ACCEPT [12:3456]").as_deref(), Some(":INPUT ACCEPT"));
    assert_eq!(iptables_line("-A INPUT -i lo -j ACCEPT").as_deref(), Some("-A INPUT -i lo -j ACCEPT"));

    let links = "7: imgraph-Gone12: <BROADCAST> mtu 1500 state DOWN\\ link/ether 00:00:00:00:00:00\n\
                 8: vethloose@vethpeer: <BROADCAST> mtu 1500 state DOWN\\ link/ether 00:00:00:00:00:01\n\
                 9: vethkept@if3: <BROADCAST> mtu 1500 master br0 state DOWN\\ link/ether 00:00:00:00:00:02\n\
                 10: imgraph2-Gone12: <BROADCAST> mtu 1500 state DOWN\\ link/ether 00:00:00:00:00:03\n";
    // No /tmp/imgraph-test.Gone12: bridges left behind are compared; a veth on some other bridge is compared.
    assert_eq!(ignored_interfaces(links), ["vethloose".to_owned()].into());
}
