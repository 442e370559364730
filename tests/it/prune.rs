//! `imgraph prune` end to end, against the real daemon of `scripts/with-test-env.sh`. Every test works in a
//! namespace of its own, since the tests share the daemon.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{Run, TestEnv, TestTree, test_env};

/// A tree whose images live under `namespace`, each built `FROM` the test base image.
fn tree(env: &TestEnv, namespace: &str, images: &[(&str, &str)]) -> TestTree {
    images
        .iter()
        .fold(TestTree::new().file("images.toml", format!("namespace = \"{namespace}\"\n")), |tree, (name, version)| {
            tree.image(name, name, version, &format!("FROM {}\n", env.base_image))
        })
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("run docker");
    assert!(output.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Builds a distinct image (its own label) `FROM` the test base image, tagged with every reference in `tags`;
/// returns its id.
fn image(env: &TestEnv, tags: &[&str]) -> String {
    image_from(&env.base_image, tags)
}

/// Builds a distinct image `FROM` `parent`, tagged with every reference in `tags`; returns its id.
fn image_from(parent: &str, tags: &[&str]) -> String {
    // No cache: the classic builder's cache lookup reads every child of the base image, and fails ("unable to
    // find image") when another test deletes one of them meanwhile.
    let mut build = Command::new("docker")
        .args(["build", "-q", "--no-cache", "--network", "none", "-t", tags[0], "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run docker build");
    let dockerfile = format!("FROM {parent}\nLABEL dev.imgraph.test.prune=\"{}\"\n", tags[0]);
    build.stdin.take().expect("stdin").write_all(dockerfile.as_bytes()).expect("write the Dockerfile");
    let output = build.wait_with_output().expect("docker build");
    assert!(output.status.success(), "docker build {tags:?}: {}", String::from_utf8_lossy(&output.stderr));
    for tag in &tags[1..] {
        docker(&["tag", tags[0], tag]);
    }
    id(tags[0]).expect("the image just built")
}

/// The id of a local reference, if the daemon has it.
fn id(reference: &str) -> Option<String> {
    let output =
        Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", reference]).output().expect("docker");
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn exists(reference: &str) -> bool {
    id(reference).is_some()
}

/// The `--json` lines, as (reference, action).
fn actions(run: &Run) -> Vec<(String, String)> {
    let mut actions: Vec<(String, String)> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .map(|v| (v["reference"].as_str().unwrap().to_owned(), v["action"].as_str().unwrap().to_owned()))
        .collect();
    actions.sort();
    actions
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn old_versions_are_removed_and_the_current_one_kept_with_latest() {
    let env = test_env();
    let ns = "t-prune-old";
    let current = image(&env, &[&format!("{ns}/app:2.0"), &format!("{ns}/app:latest")]);
    let old = image(&env, &[&format!("{ns}/app:1.0")]);
    image(&env, &[&format!("{ns}/app:1.1")]);
    let tree = tree(&env, ns, &[("app", "2.0")]);

    let run = tree.run(&["prune", "."]).success();
    let stderr = run.stderr();
    assert!(!exists(&format!("{ns}/app:1.0")) && !exists(&format!("{ns}/app:1.1")), "{stderr}");
    assert!(id(&old).is_none(), "the old image itself is deleted");
    assert_eq!(id(&format!("{ns}/app:2.0")).as_deref(), Some(current.as_str()));
    assert_eq!(id(&format!("{ns}/app:latest")).as_deref(), Some(current.as_str()), "latest on the current image stays");
    let short = &old["sha256:".len()..][..12];
    assert!(stderr.contains(&format!("{ns}/app:1.0 ({short}) removed")), "{stderr}");
    assert!(stderr.contains("pruned 1 image: 2 references removed, 0 untagged, 0 could not be removed"), "{stderr}");

    // Nothing is left to do.
    let again = tree.run(&["prune", ".", "--json"]).success();
    assert_eq!(again.stdout(), "");
    assert!(again.stderr().contains("0 references removed"), "{}", again.stderr());
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn an_old_image_with_two_tags_is_removed_without_a_conflict() {
    let env = test_env();
    let ns = "t-prune-twotags";
    image(&env, &[&format!("{ns}/app:2.0")]);
    let old = image(&env, &[&format!("{ns}/app:1.0"), &format!("{ns}/app:latest")]);
    let tree = tree(&env, ns, &[("app", "2.0")]);

    let run = tree.run(&["prune", ".", "--json"]).success();
    assert_eq!(
        actions(&run),
        pairs(&[(&format!("{ns}/app:1.0"), "removed"), (&format!("{ns}/app:latest"), "removed")])
    );
    let line: Value = serde_json::from_str(run.stdout().lines().next().unwrap()).unwrap();
    assert_eq!(line["image"], "app");
    assert_eq!(line["keep"], format!("{ns}/app:2.0"));
    assert_eq!(line["id"], old.as_str());
    assert!(id(&old).is_none(), "{}", run.stderr());
    assert!(!exists(&format!("{ns}/app:latest")));
    assert!(exists(&format!("{ns}/app:2.0")));
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn an_image_another_repository_tags_is_untagged_and_kept() {
    let env = test_env();
    let ns = "t-prune-shared";
    image(&env, &[&format!("{ns}/app:2.0")]);
    let shared = image(&env, &[&format!("{ns}/app:1.0"), &format!("{ns}-elsewhere/keep:1")]);
    let tree = tree(&env, ns, &[("app", "2.0")]);

    let run = tree.run(&["prune", ".", "--json"]).success();
    assert_eq!(actions(&run), pairs(&[(&format!("{ns}/app:1.0"), "untagged")]));
    let line: Value = serde_json::from_str(run.stdout().trim()).unwrap();
    assert_eq!(line["kept_by"], serde_json::json!([format!("{ns}-elsewhere/keep:1")]));
    assert!(!exists(&format!("{ns}/app:1.0")));
    assert_eq!(id(&format!("{ns}-elsewhere/keep:1")).as_deref(), Some(shared.as_str()), "the other tag stays");
    let stderr = run.stderr();
    assert!(stderr.contains(&format!("untagged; the image stays, also tagged {ns}-elsewhere/keep:1")), "{stderr}");
    assert!(stderr.contains("0 references removed, 1 untagged, 0 could not be removed"), "{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn an_image_used_by_a_container_is_left_as_it_was_and_the_exit_is_non_zero() {
    let env = test_env();
    let ns = "t-prune-used";
    image(&env, &[&format!("{ns}/app:2.0")]);
    let used = image(&env, &[&format!("{ns}/app:1.0"), &format!("{ns}/app:latest")]);
    let unused = image(&env, &[&format!("{ns}/app:1.1")]);
    let container = docker(&["create", "--network", "none", &format!("{ns}/app:1.0"), "/bin/true"]);
    let tree = tree(&env, ns, &[("app", "2.0")]);

    let run = tree.run(&["prune", ".", "--json"]).expect_code(1);
    docker(&["rm", &container]);
    assert_eq!(
        actions(&run),
        pairs(&[
            (&format!("{ns}/app:1.0"), "failed"),
            (&format!("{ns}/app:1.1"), "removed"),
            (&format!("{ns}/app:latest"), "failed"),
        ])
    );
    let stderr = run.stderr();
    assert!(stderr.contains(&format!("{ns}/app:1.0 (")), "{stderr}");
    assert!(stderr.contains("could not be removed: "), "{stderr}");
    assert!(stderr.contains("container"), "the daemon says why:\n{stderr}");
    assert!(stderr.contains("1 reference removed, 0 untagged, 2 could not be removed"), "{stderr}");
    // Refused means untouched: both tags are still on the image.
    assert_eq!(id(&format!("{ns}/app:1.0")).as_deref(), Some(used.as_str()));
    assert_eq!(id(&format!("{ns}/app:latest")).as_deref(), Some(used.as_str()));
    assert!(id(&unused).is_none(), "the other old image is removed all the same");
}

/// base <- app, both at a new version; the old app was built on the old base.
fn base_and_app(env: &TestEnv, ns: &str) -> TestTree {
    tree(env, ns, &[("base", "1.1")]).image("app", "app", "2.0", "FROM {{ \"base\" | image_tag }}\n")
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn children_are_pruned_first_so_old_parents_can_go() {
    let env = test_env();
    let ns = "t-prune-chain";
    let old_base = image(&env, &[&format!("{ns}/base:1.0")]);
    let old_app = image_from(&format!("{ns}/base:1.0"), &[&format!("{ns}/app:1.0")]);
    image(&env, &[&format!("{ns}/base:1.1")]);
    image_from(&format!("{ns}/base:1.1"), &[&format!("{ns}/app:2.0")]);

    let run = base_and_app(&env, ns).run(&["prune", "."]).success();
    let stderr = run.stderr();
    assert!(id(&old_app).is_none() && id(&old_base).is_none(), "{stderr}");
    let (app, base) = (stderr.find("old versions of app"), stderr.find("old versions of base"));
    assert!(app.is_some() && app < base, "app (the child) first:\n{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn an_old_parent_of_a_current_image_is_not_removed() {
    let env = test_env();
    let ns = "t-prune-parent";
    let old_base = image(&env, &[&format!("{ns}/base:1.0"), &format!("{ns}/base:latest")]);
    image(&env, &[&format!("{ns}/base:1.1")]);
    // The current app has not been rebuilt on base 1.1 yet.
    image_from(&format!("{ns}/base:1.0"), &[&format!("{ns}/app:2.0")]);

    let run = base_and_app(&env, ns).run(&["prune", "."]).expect_code(1);
    let stderr = run.stderr();
    assert!(stderr.contains("could not be removed: ") && stderr.contains("child"), "{stderr}");
    assert_eq!(id(&format!("{ns}/base:1.0")).as_deref(), Some(old_base.as_str()), "untouched:\n{stderr}");
    assert_eq!(id(&format!("{ns}/base:latest")).as_deref(), Some(old_base.as_str()), "untouched:\n{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn nightly_keeps_the_nightly_tag_and_removes_the_plain_version() {
    let env = test_env();
    let ns = "t-prune-nightly";
    image(&env, &[&format!("{ns}/app:2.0")]);
    let nightly = image(&env, &[&format!("{ns}/app:2.0-20261122")]);
    image(&env, &[&format!("{ns}/app:2.0-20261121")]);
    let tree = tree(&env, ns, &[("app", "2.0")]);

    let run = tree.run(&["prune", ".", "--nightly", "20261122", "--json"]).success();
    assert_eq!(
        actions(&run),
        pairs(&[(&format!("{ns}/app:2.0"), "removed"), (&format!("{ns}/app:2.0-20261121"), "removed")])
    );
    assert_eq!(id(&format!("{ns}/app:2.0-20261122")).as_deref(), Some(nightly.as_str()));
    assert!(!exists(&format!("{ns}/app:2.0")));

    // A strftime format is refused rather than taken for a tag no image carries (which would remove them all).
    let refused = tree.run(&["prune", ".", "--nightly", "%Y%m%d"]).expect_code(2);
    assert!(refused.stderr().contains("not a nightly identifier"), "{}", refused.stderr());
    assert!(exists(&format!("{ns}/app:2.0-20261122")));
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn select_prunes_the_matching_images_only() {
    let env = test_env();
    let ns = "t-prune-select";
    image(&env, &[&format!("{ns}/base:1.0")]);
    image(&env, &[&format!("{ns}/base:0.9")]);
    image(&env, &[&format!("{ns}/app:2.0")]);
    image(&env, &[&format!("{ns}/app:1.0")]);
    let tree = tree(&env, ns, &[("base", "1.0")]).image("app", "app", "2.0", "FROM {{ \"base\" | image_tag }}\n");

    let run = tree.run(&["prune", ".", "--select", "app", "--json"]).success();
    assert_eq!(actions(&run), pairs(&[(&format!("{ns}/app:1.0"), "removed")]));
    assert!(exists(&format!("{ns}/base:0.9")), "what app depends on is not pruned");
    assert!(run.stderr().contains("pruned 1 image:"), "{}", run.stderr());
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn dry_run_removes_nothing() {
    let env = test_env();
    let ns = "t-prune-dry";
    image(&env, &[&format!("{ns}/app:2.0")]);
    image(&env, &[&format!("{ns}/app:1.0"), &format!("{ns}/app:latest")]);
    image(&env, &[&format!("{ns}/app:0.9"), &format!("{ns}-elsewhere/keep:1")]);
    let tree = tree(&env, ns, &[("app", "2.0")]);

    let run = tree.run(&["prune", ".", "--dry-run", "--json"]).success();
    assert_eq!(
        actions(&run),
        pairs(&[
            (&format!("{ns}/app:0.9"), "would-untag"),
            (&format!("{ns}/app:1.0"), "would-remove"),
            (&format!("{ns}/app:latest"), "would-remove"),
        ])
    );
    for reference in ["app:0.9", "app:1.0", "app:latest", "app:2.0"] {
        assert!(exists(&format!("{ns}/{reference}")), "{reference} is still there");
    }
    let stderr = run.stderr();
    assert!(stderr.contains(&format!("{ns}/app:1.0 (")) && stderr.contains("would be removed"), "{stderr}");
    assert!(stderr.contains("dry run: 1 image checked; 2 references would be removed, 1 untagged"), "{stderr}");
}

#[test]
fn prune_without_a_daemon_says_so() {
    let tree = TestTree::new().image("app", "app", "1", "FROM scratch\n");
    let output = crate::harness::run_without_daemon(&tree, &["prune", "."]);
    assert_eq!(output.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Docker is not running"), "{stderr}");
}
