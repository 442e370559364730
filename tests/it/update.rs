//! `update NAME DIR --reason`: exact names, transitive dependents, docker-pkg's entry format and bump rule,
//! all or nothing, and the production corpus (every version bumpable; a real base with many dependents).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use imgraph::config::Config;
use imgraph::definition::changelog;
use imgraph::definition::version::Version;
use imgraph::tree::Tree;
use insta::assert_snapshot;
use serde_json::Value;

use crate::harness::{IMGRAPH, TestTree, shared_dir};

const BASE: &str = "FROM scratch\n";

/// One run of `imgraph` with a fixed author and time zone and no user or git config of the machine.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    redact: PathBuf,
}

impl Run {
    #[track_caller]
    fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// Exit code and output, with the temp path and the dates redacted.
    fn transcript(&self) -> String {
        let text = format!("exit: {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr);
        redact_dates(&text.replace(&self.redact.to_string_lossy().into_owned(), "[TREE]"))
    }
}

/// `Mon, 23 Nov 2026 10:00:00 +0000` → `[DATE]` (the dates `update` writes are the current time).
fn redact_dates(text: &str) -> String {
    const DAYS: [&str; 7] = ["Mon, ", "Tue, ", "Wed, ", "Thu, ", "Fri, ", "Sat, ", "Sun, "];
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = DAYS.iter().filter_map(|d| rest.find(d)).min() {
        // `Mon, 23 Nov 2026 10:00:00 +0000` is 31 characters.
        let end = (at + 31).min(rest.len());
        out.push_str(&rest[..at]);
        out.push_str("[DATE]");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn imgraph(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(IMGRAPH);
    command
        .args(args)
        .current_dir(cwd)
        .env("XDG_CONFIG_HOME", cwd.join(".no-user-config"))
        .env_remove("HOME")
        .env("DEBFULLNAME", "Rita Researcher")
        .env("DEBEMAIL", "rita@example.org")
        .env("TZ", "UTC")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CEILING_DIRECTORIES", cwd.parent().unwrap_or(cwd));
    for (key, value) in env {
        if value.is_empty() {
            command.env_remove(key);
        } else {
            command.env(key, value);
        }
    }
    let output = command.output().expect("run imgraph");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        redact: cwd.to_owned(),
    }
}

/// Every `changelog` under `root`, by path relative to it, with its bytes.
fn changelogs(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_name() == "changelog")
        .map(|e| {
            let rel = e.path().strip_prefix(root).expect("under root").to_owned();
            (rel, std::fs::read(e.path()).expect("read changelog"))
        })
        .collect()
}

/// docker-pkg's experiment tree (spec §13 `upd/`), with the base built from an image outside the tree that
/// its `control` names (docker-pkg's `update` crashes on that), and `my-dpr-base`, which docker-pkg's
/// `*NAME:*` glob wrongly updates with `dpr-base`.
fn upd_tree() -> TestTree {
    TestTree::new()
        .image("base", "dpr-base", "1.0-1", "FROM docker-registry.example.org/bookworm:latest\n")
        .file("base/control", "Package: dpr-base\nDepends: bookworm\n")
        .image("child", "dpr-child", "2.0", "FROM {{ \"dpr-base\" | image_tag }}\n")
        .file("child/control", "Package: dpr-child\nDepends: dpr-base\n")
        .image("grandchild", "dpr-grandchild", "0.1-s3", "FROM {{ \"dpr-child\" | image_tag }}\n")
        .file("grandchild/control", "Package: dpr-grandchild\nDepends: dpr-child, dpr-base\n")
        .image("unrelated", "dpr-unrelated", "1.0", BASE)
        .image("my", "my-dpr-base", "1.0", BASE)
}

#[test]
fn updates_the_image_and_its_dependents_only() {
    let tree = upd_tree();
    let before = changelogs(tree.path());
    let run = imgraph(tree.path(), &["update", "dpr-base", ".", "--reason", "Security fix\nsecond line"], &[]);
    let run = run.expect(0);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_snapshot!("upd_summary", run.transcript());
    let after = changelogs(tree.path());
    for unchanged in ["unrelated/changelog", "my/changelog"] {
        assert_eq!(before[Path::new(unchanged)], after[Path::new(unchanged)], "{unchanged} must not change");
    }
    let child = String::from_utf8(after[Path::new("child/changelog")].clone()).unwrap();
    // Spec §8.2's example, byte for byte, with the old content kept after it.
    let old = String::from_utf8(before[Path::new("child/changelog")].clone()).unwrap();
    let entry = child.strip_suffix(&old).expect("the old content follows unchanged");
    assert_eq!(
        redact_dates(entry),
        "dpr-child (2.0-s1) wikimedia; urgency=high\n\n   Refresh for update in parent image dpr-base:\n   \
         Security fix\n   second line\n\n -- Rita Researcher <rita@example.org>  [DATE]\n\n"
    );
    assert!(entry.contains(" +0000\n"), "TZ=UTC: {entry}");
    let graph = imgraph(tree.path(), &["graph", "."], &[]).expect(0).stdout;
    assert_snapshot!("upd_graph_after", graph);
}

#[test]
fn version_applies_to_the_named_image_only() {
    let tree = upd_tree();
    let run =
        imgraph(tree.path(), &["update", "dpr-child", ".", "--reason", "* New upstream.", "--version", "2.1"], &[]);
    assert_snapshot!("upd_version", run.expect(0).transcript());
    let base = std::fs::read_to_string(tree.path().join("base/changelog")).unwrap();
    assert!(base.starts_with("dpr-base (1.0-1) "), "the parent is not touched:\n{base}");
}

#[test]
fn a_name_longer_than_any_column_is_printed_unaligned() {
    // Found by the mutation fuzzer: the formatter panics on widths over 65,535.
    let name = "n".repeat(100_000);
    let tree = TestTree::new().image("long", &name, "1.0", "FROM scratch\n");
    let run = imgraph(tree.path(), &["update", &name, ".", "--reason", "* Rebuild.", "--dry-run"], &[]);
    let run = run.expect(0);
    assert!(run.stderr.contains(&format!("{name}  1.0 -> 1.0-s1")), "{}", run.stderr);
}

#[test]
fn dry_run_writes_nothing() {
    let tree = upd_tree();
    let before = changelogs(tree.path());
    let run = imgraph(tree.path(), &["update", "dpr-child", ".", "--reason", "* Rebuild.", "--dry-run"], &[]);
    assert_snapshot!("upd_dry_run", run.expect(0).transcript());
    assert_eq!(before, changelogs(tree.path()));
    let leftovers: Vec<_> = walkdir::WalkDir::new(tree.path())
        .into_iter()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("imgraph-update"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn unknown_name_suggests_close_ones() {
    let tree = upd_tree();
    let before = changelogs(tree.path());
    let run = imgraph(tree.path(), &["update", "dpr-bas", ".", "--reason", "x"], &[]);
    assert_snapshot!("upd_unknown", run.expect(3).transcript());
    let run = imgraph(tree.path(), &["update", "zz*", ".", "--reason", "x"], &[]);
    assert_snapshot!("upd_glob_no_match", run.expect(3).transcript());
    assert_eq!(before, changelogs(tree.path()));
}

#[test]
fn a_glob_says_what_it_matched() {
    let tree = TestTree::new()
        .image("a", "lib-a", "1.0", BASE)
        .image("b", "lib-b", "1.0~rc1", BASE)
        .image("app", "app", "3.0-s2", "FROM {{ \"lib-a\" | image_tag }} AS a\nFROM {{ \"lib-b\" | image_tag }}\n")
        .image("other", "other-lib-c", "1.0", BASE);
    let run = imgraph(tree.path(), &["update", "lib-*", ".", "--reason", "* Rebuild.", "--dry-run"], &[]);
    assert_snapshot!("upd_glob", run.expect(0).transcript());
    let run = imgraph(tree.path(), &["update", "lib-*", ".", "--reason", "x", "--version", "2.0"], &[]);
    assert_snapshot!("upd_glob_version", run.expect(3).transcript());
}

#[test]
fn one_unbumpable_image_means_nothing_is_written() {
    // The grandchild's epoch cannot be in a Docker tag, and dropping it would sort lower.
    let tree = upd_tree()
        .image("epoch", "dpr-epoch", "1:1.0-1", "FROM {{ \"dpr-child\" | image_tag }}\n")
        .file("epoch/control", "Package: dpr-epoch\nDepends: dpr-child\n");
    let before = changelogs(tree.path());
    let run = imgraph(tree.path(), &["update", "dpr-base", ".", "--reason", "x"], &[]);
    assert_snapshot!("upd_unbumpable", run.expect(3).transcript());
    assert_eq!(before, changelogs(tree.path()));
    // An illegal --version is caught the same way.
    let run = imgraph(tree.path(), &["update", "dpr-child", ".", "--reason", "x", "--version", "2.1~rc1"], &[]);
    assert_snapshot!("upd_illegal_version", run.expect(3).transcript());
    assert_eq!(before, changelogs(tree.path()));
    // A changelog the scan cannot read names no image: it does not stop the update of the others, and is
    // reported (it might have been a dependent).
    let tree = upd_tree().file("broken/changelog", "garbage\n").file("broken/Dockerfile.template", BASE);
    let run = imgraph(tree.path(), &["update", "dpr-base", ".", "--reason", "x", "--dry-run"], &[]).expect(0);
    assert!(run.stderr.contains("broken/changelog:1: no changelog entry"), "{}", run.stderr);
    assert!(run.stdout.contains("dpr-base (1.0-1-s1)"), "{}", run.stdout);
}

#[test]
fn files_keep_their_mode_links_and_line_endings() {
    use std::os::unix::fs::PermissionsExt;
    let crlf = imgraph_changelog("dpr-child", "2.0").replace('\n', "\r\n");
    let tree = upd_tree()
        .file("shared/dpr-base.changelog", imgraph_changelog("dpr-base", "1.0-1"))
        .file("child/changelog", &crlf);
    std::fs::remove_file(tree.path().join("base/changelog")).unwrap();
    std::os::unix::fs::symlink("../shared/dpr-base.changelog", tree.path().join("base/changelog")).unwrap();
    let grandchild = tree.path().join("grandchild/changelog");
    std::fs::set_permissions(&grandchild, std::fs::Permissions::from_mode(0o600)).unwrap();

    imgraph(tree.path(), &["update", "dpr-base", ".", "--reason", "x"], &[]).expect(0);
    assert!(tree.path().join("base/changelog").is_symlink(), "the link is kept");
    let shared = std::fs::read_to_string(tree.path().join("shared/dpr-base.changelog")).unwrap();
    assert!(shared.starts_with("dpr-base (1.0-1-s1) "), "{shared}");
    assert_eq!(std::fs::metadata(&grandchild).unwrap().permissions().mode() & 0o777, 0o600);
    let child = std::fs::read_to_string(tree.path().join("child/changelog")).unwrap();
    let entry = child.strip_suffix(&crlf).expect("old content kept");
    assert!(entry.starts_with("dpr-child (2.0-s1) wikimedia; urgency=high\r\n\r\n"), "{entry:?}");
    assert!(!entry.replace("\r\n", "").contains('\n'), "CRLF throughout: {entry:?}");
    imgraph(tree.path(), &["check", "."], &[]).expect(0);
}

fn imgraph_changelog(name: &str, version: &str) -> String {
    crate::harness::changelog(name, version)
}

#[test]
fn author_comes_from_git_then_the_config() {
    let tree = TestTree::new()
        .image("a", "a", "1.0", BASE)
        .file("images.toml", "fallback_author = \"Fall Back\"\nfallback_email = \"fb@example.org\"\ndistribution = \"bookworm-wikimedia\"\n")
        .file(".gitconfig", "[user]\n\tname = Git User\n\temail = git@example.org\n");
    let no_deb = [("DEBFULLNAME", ""), ("DEBEMAIL", "")];
    let run = imgraph(tree.path(), &["update", "a", ".", "--reason", "x", "--dry-run"], &no_deb).expect(0);
    assert!(run.stdout.contains("a (1.0-s1) bookworm-wikimedia; urgency=high\n"), "{}", run.stdout);
    assert!(run.stdout.contains("\n -- Fall Back <fb@example.org>  "), "{}", run.stdout);
    let gitconfig = tree.path().join(".gitconfig").to_string_lossy().into_owned();
    let git = [("DEBFULLNAME", ""), ("DEBEMAIL", ""), ("GIT_CONFIG_GLOBAL", gitconfig.as_str())];
    let run = imgraph(tree.path(), &["update", "a", ".", "--reason", "x", "--dry-run"], &git).expect(0);
    assert!(run.stdout.contains("\n -- Git User <git@example.org>  "), "{}", run.stdout);
    // DEBEMAIL may carry the name too, as dch allows.
    let both = [("DEBFULLNAME", ""), ("DEBEMAIL", "Deb Both <both@example.org>")];
    let run = imgraph(tree.path(), &["update", "a", ".", "--reason", "x", "--dry-run"], &both).expect(0);
    assert!(run.stdout.contains("\n -- Deb Both <both@example.org>  "), "{}", run.stdout);
    // The date is local time, as `date -R` prints it.
    let run = imgraph(tree.path(), &["update", "a", ".", "--reason", "x", "--dry-run"], &[("TZ", "IST-5:30")]);
    let trailer = run.expect(0).stdout.lines().find(|l| l.starts_with(" -- ")).unwrap_or_default().to_owned();
    assert!(trailer.ends_with(" +0530"), "{trailer}");
}

/// The production scan roots and their configs (`../shared/corpora/production-images`).
const PRODUCTION_ROOTS: [(&str, &str); 4] = [
    ("images", "config.yaml"),
    ("istio", "config-istio.yaml"),
    ("cert-manager", "config-cert-manager.yaml"),
    ("ml", "config-ml.yaml"),
];

#[test]
fn every_production_version_bumps_to_a_higher_legal_tag() {
    let Some(shared) = shared_dir() else { return };
    let corpus = shared.join("corpora/production-images");
    let mut bumped = BTreeMap::new();
    for (root, config) in PRODUCTION_ROOTS {
        let config = Config::load(Some(&corpus.join(config)), None, None).expect("config");
        let id = config.update_id.clone();
        let tree = Tree::scan(&corpus.join(root), config, None).expect("scan");
        for (_, image) in tree.images() {
            let new = image.version.bump(&id).unwrap_or_else(|e| panic!("{root}: {} {}: {e}", image.name, image.tag));
            assert_eq!(new.cmp_dpkg(&image.version), std::cmp::Ordering::Greater, "{} -> {new}", image.tag);
            imgraph::reference::check_tag(new.as_str()).unwrap_or_else(|e| panic!("{}: {e}", image.name));
            Version::parse(new.as_str()).unwrap_or_else(|e| panic!("{}: `{new}`: {e}", image.name));
            // Bumping again keeps going up (repeated updates).
            let again = new.bump(&id).expect("bumps again");
            assert_eq!(again.cmp_dpkg(&new), std::cmp::Ordering::Greater, "{new} -> {again}");
            bumped.insert(image.tag.clone(), new.to_string());
        }
    }
    assert!(bumped.len() >= 80, "only {} distinct versions", bumped.len());
    // A few of docker-pkg's rejects, with the extended rule's results.
    for (old, new) in [
        ("8.1.33-1-s3-20260816", "8.1.33-1-s4-20260816"),
        ("0.0.3-20250601-s1-20260816", "0.0.3-20250601-s2-20260816"),
        ("1.14.0-wmf0-20260816", "1.14.0-wmf0-20260816-s1"),
        ("v20220915-3", "v20220915-3-s1"),
        ("1.22-20260816", "1.22-20260816-s1"),
    ] {
        assert_eq!(bumped.get(old).map(String::as_str), Some(new), "{old}");
    }
}

/// Copies a tree as `cp -a` does: links stay links (production-images has some).
fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let target = to.join(entry.path().strip_prefix(from).expect("under from"));
        if entry.file_type().is_symlink() {
            let link = std::fs::read_link(entry.path()).expect("read link");
            std::os::unix::fs::symlink(link, &target).expect("symlink");
        } else if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn production_base_with_many_dependents() {
    let Some(shared) = shared_dir() else { return };
    let corpus = shared.join("corpora/production-images");
    let work = tempfile::tempdir().expect("temp dir");
    copy_dir(&corpus.join("images"), &work.path().join("images"));
    std::fs::copy(corpus.join("config.yaml"), work.path().join("config.yaml")).expect("copy config");
    let root = work.path().join("images");

    // The expected set, from the graph imgraph prints: golang1.22 and everything that depends on it.
    let graph: Value =
        serde_json::from_str(&imgraph(work.path(), &["graph", "images", "--format", "json"], &[]).expect(0).stdout)
            .expect("json");
    let images = graph["images"].as_array().expect("images");
    let path_of: BTreeMap<&str, PathBuf> = images
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), Path::new(i["path"].as_str().unwrap()).join("changelog")))
        .collect();
    let tag_of: BTreeMap<&str, &str> =
        images.iter().map(|i| (i["name"].as_str().unwrap(), i["tag"].as_str().unwrap())).collect();
    let mut expected = BTreeSet::from(["golang1.22"]);
    loop {
        let more: Vec<&str> = images
            .iter()
            .filter(|i| i["depends"].as_array().unwrap().iter().any(|d| expected.contains(d.as_str().unwrap())))
            .map(|i| i["name"].as_str().unwrap())
            .filter(|n| !expected.contains(n))
            .collect();
        if more.is_empty() {
            break;
        }
        expected.extend(more);
    }
    assert!(expected.len() >= 10, "golang1.22 should have many dependents: {expected:?}");
    let check_before = imgraph(work.path(), &["check", "images"], &[]).code;

    let before = changelogs(&root);
    let run = imgraph(work.path(), &["update", "golang1.22", "images", "--reason", "* Security update."], &[]);
    let run = run.expect(0);
    let after = changelogs(&root);
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
    let changed: BTreeSet<&PathBuf> = before.keys().filter(|p| before[*p] != after[*p]).collect();
    let wanted: BTreeSet<&PathBuf> = expected.iter().map(|n| &path_of[n]).collect();
    assert_eq!(changed, wanted, "exactly golang1.22 and its dependents change");

    for name in &expected {
        let path = &path_of[name];
        let old = &before[path];
        let new = &after[path];
        let entry = new.strip_suffix(old.as_slice()).expect("the old content follows byte for byte");
        let top = changelog::top_entry_from(path, entry).expect("the new entry parses");
        assert_eq!(top.package, *name);
        assert_eq!(top.version, Version::new(tag_of[name]).bump("s").unwrap());
        let text = String::from_utf8_lossy(entry);
        assert_eq!(text.matches("\n -- ").count(), 1, "exactly one entry on top of {}:\n{text}", path.display());
        let refresh = text.contains("   Refresh for update in parent image golang1.22:\n   * Security update.\n");
        assert_eq!(refresh, *name != "golang1.22", "{text}");
        assert!(text.contains("; urgency=high\n"));
        assert!(run.stderr.contains(&format!("  {name} ")), "the summary names {name}:\n{}", run.stderr);
    }

    // The tree still scans, checks and renders.
    assert_eq!(imgraph(work.path(), &["check", "images"], &[]).code, check_before);
    let graph: Value =
        serde_json::from_str(&imgraph(work.path(), &["graph", "images", "--format", "json"], &[]).expect(0).stdout)
            .expect("json");
    let new_tag = graph["images"].as_array().unwrap().iter().find(|i| i["name"] == "envoy").unwrap()["tag"].clone();
    assert_eq!(new_tag, Value::from(Version::new(tag_of["envoy"]).bump("s").unwrap().to_string()));
    for name in &expected {
        imgraph(work.path(), &["render", "images", name], &[]).expect(0);
    }
}

/// Two `update` runs at once take turns on the tree's lock: every entry of both is written, and the second run
/// bumps what the first one wrote.
#[test]
fn concurrent_updates_lose_nothing() {
    let tree = upd_tree();
    let spawn = |reason: &str| {
        Command::new(IMGRAPH)
            .args(["update", "dpr-base", ".", "--reason", reason])
            .current_dir(tree.path())
            .env("XDG_CONFIG_HOME", tree.path().join(".no-user-config"))
            .env("DEBFULLNAME", "Rita Researcher")
            .env("DEBEMAIL", "rita@example.org")
            .env("GIT_CEILING_DIRECTORIES", tree.path().parent().unwrap_or(tree.path()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run imgraph")
    };
    let runs: Vec<_> = (0..4).map(|i| spawn(&format!("* Run {i}."))).collect();
    for mut run in runs {
        assert!(run.wait().expect("wait").success());
    }
    for (changelog, versions) in [
        ("base/changelog", ["1.0-1-s4", "1.0-1-s3", "1.0-1-s2", "1.0-1-s1", "1.0-1"]),
        ("grandchild/changelog", ["0.1-s7", "0.1-s6", "0.1-s5", "0.1-s4", "0.1-s3"]),
    ] {
        let text = std::fs::read_to_string(tree.path().join(changelog)).expect("read");
        let found: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(' ') && l.contains(" ("))
            .filter_map(|l| l.split_once(" (").and_then(|(_, rest)| rest.split_once(')')).map(|(v, _)| v))
            .collect();
        assert_eq!(found, versions, "{changelog}:\n{text}");
        for i in 0..4 {
            assert!(text.contains(&format!("* Run {i}.")), "{changelog} lost run {i}:\n{text}");
        }
    }
}
