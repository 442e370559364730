//! `imgraph outdated` and `update --outdated` against the real registry: a template changed without a version
//! bump, and a base image moved upstream, are both caught, with their dependents, and fixed atomically.

use std::process::Command;

use serde_json::Value;

use crate::harness::{IMGRAPH, TestTree, docker, test_env};

fn run(tree: &TestTree, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(IMGRAPH)
        .args(args)
        .current_dir(tree.path())
        .env("XDG_CONFIG_HOME", tree.path().join(".no-user-config"))
        .env("DEBFULLNAME", "Rita Researcher")
        .env("DEBEMAIL", "rita@example.org")
        .output()
        .expect("run imgraph");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Builds a one-file image `FROM` the test base and pushes it as `reference`; its registry digest.
fn push_base(base: &str, reference: &str, content: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("content"), content).expect("write");
    std::fs::write(dir.path().join("Dockerfile"), format!("FROM {base}\nCOPY content /content\n")).expect("write");
    docker(&["build", "--no-cache", "--network", "none", "-q", "-t", reference, &dir.path().to_string_lossy()]);
    docker(&["push", reference]);
    let digests = docker(&["image", "inspect", "--format", "{{join .RepoDigests \"\\n\"}}", reference]);
    let repository = reference.rsplit_once(':').map_or(reference, |(r, _)| r);
    digests
        .lines()
        .find_map(|d| d.strip_prefix(repository)?.strip_prefix('@'))
        .unwrap_or_else(|| panic!("no digest of {reference} in {digests}"))
        .to_owned()
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_changed_template_and_a_moved_base_are_outdated_and_update_fixes_them() {
    let env = test_env();
    let external = format!("{}/t-outdated-ext/base:1", env.registry);
    let first = push_base(&env.base_image, &external, "one");
    let tree = TestTree::new()
        .file("images.toml", format!("registry = \"{}\"\nnamespace = \"t-outdated\"\n", env.registry))
        .image("app", "app", "1.0", &format!("FROM {external}\nRUN echo app > /app\n"))
        .image("child", "child", "1.0", "FROM {{ \"app\" | image_tag }}\n")
        .image("other", "other", "1.0", &format!("FROM {}\n", env.base_image));
    let (code, _, stderr) = run(&tree, &["publish", ".", "--no-pull"]);
    assert_eq!(code, 0, "{stderr}");
    let labels: Value = serde_json::from_str(&docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &format!("{}/t-outdated/app:1.0", env.registry),
    ]))
    .expect("labels");
    assert_eq!(labels["org.opencontainers.image.base.digest"], first, "the base digest is recorded at build time");

    let (code, stdout, stderr) = run(&tree, &["outdated", "."]);
    assert_eq!((code, stdout.as_str()), (0, ""), "nothing is outdated yet: {stderr}");

    // The template changes, the version does not.
    std::fs::write(
        tree.path().join("app/Dockerfile.template"),
        format!("FROM {external}\nRUN echo app, changed > /app\n"),
    )
    .expect("write");
    let (code, stdout, stderr) = run(&tree, &["outdated", ".", "--json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(
        (&lines[0]["name"], &lines[0]["tag"], &lines[0]["reason"], &lines[0]["dependents"]),
        (&Value::from("app"), &Value::from("1.0"), &Value::from("changed"), &serde_json::json!(["child"]))
    );
    assert!(lines[0]["detail"].as_str().unwrap().contains("fingerprint"), "{stdout}");

    // The base moves upstream.
    let second = push_base(&env.base_image, &external, "two");
    assert_ne!(first, second);
    let (code, stdout, _) = run(&tree, &["outdated", "."]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains(&format!(
            "app  1.0  base: base {external} moved from {first} to {second} (and 1 dependent: child)"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("app  1.0  changed: "), "{stdout}");
    assert!(!stdout.contains("other"), "{stdout}");

    // One atomic update bumps exactly the outdated images and their dependents; the default reason says why.
    let (code, _, stderr) = run(&tree, &["update", "--outdated", "."]);
    assert_eq!(code, 0, "{stderr}");
    let app = std::fs::read_to_string(tree.path().join("app/changelog")).expect("read");
    assert!(app.starts_with("app (1.0-s1) wikimedia; urgency=high\n"), "{app}");
    assert!(app.contains(&format!("* Rebuild on {external}, updated upstream: {first} -> {second}.")), "{app}");
    assert!(app.contains("* Rebuild: the content changed without a version bump"), "{app}");
    let child = std::fs::read_to_string(tree.path().join("child/changelog")).expect("read");
    assert!(
        child.starts_with("child (1.0-s1) ") && child.contains("Refresh for update in parent image app:"),
        "{child}"
    );
    let other = std::fs::read_to_string(tree.path().join("other/changelog")).expect("read");
    assert!(other.starts_with("other (1.0) "), "untouched: {other}");

    // Published again, nothing is outdated.
    let (code, _, stderr) = run(&tree, &["publish", ".", "--no-pull"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = run(&tree, &["outdated", "."]);
    assert_eq!((code, stdout.as_str()), (0, ""));
}
