//! `imgraph publish` and `--nightly` end to end, against the real daemon of `scripts/with-test-env.sh` and the
//! shared test registries (`crate::fixtures`), and registries the tests start and stop themselves.

use std::path::Path;

use serde_json::Value;

use crate::fixtures::{OwnRegistry, TestCa};
use crate::harness::{
    Background, TestEnv, TestTree, docker, events, final_states, run_without_daemon, summary, test_env,
};

/// A tree publishing to `registry` under `namespace`, with extra config lines.
fn tree(registry: &str, namespace: &str, extra_config: &str) -> TestTree {
    TestTree::new()
        .file("images.toml", format!("registry = \"{registry}\"\nnamespace = \"{namespace}\"\n{extra_config}"))
}

/// a <- b <- c, each verified by a script that runs it.
fn chain(env: &TestEnv, registry: &str, namespace: &str) -> TestTree {
    let test = "#!/bin/sh\nset -e\ndocker run --rm --network none \"$1\" true\n";
    tree(registry, namespace, "")
        .image("a", "a", "1.0", &format!("FROM {}\nRUN echo a > /a\n", env.base_image))
        .image("b", "b", "2.0", "FROM {{ \"a\" | image_tag }}\nRUN echo b > /b\n")
        .image("c", "c", "3.0-1", "FROM {{ \"b\" | image_tag }}\nRUN echo c > /c\n")
        .file("c/test.sh", test)
        .chmod_x("c/test.sh")
}

fn published_report(tree: &TestTree) -> Vec<Value> {
    let text = std::fs::read_to_string(tree.path().join("imgraph-logs/published.json")).expect("published.json");
    serde_json::from_str::<Vec<Value>>(&text).expect("published.json is a JSON array")
}

/// The order in which images started pushing.
fn push_order(run: &crate::harness::Run) -> Vec<String> {
    events(run)
        .iter()
        .filter(|e| e["event"] == "started" && e["step"] == "push")
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_chain_is_published_parents_first_and_a_rerun_pushes_nothing() {
    let env = test_env();
    let registry = &env.registry;
    let tree = chain(&env, registry, "t-pubchain");
    let run = tree.run(&["publish", ".", "--json", "--no-pull"]).success();
    assert_eq!(push_order(&run), ["a", "b", "c"]);
    assert_eq!(
        final_states(&run),
        [("a", "published"), ("b", "published"), ("c", "published")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let report = published_report(&tree);
    assert_eq!(report.len(), 3);
    assert_eq!(report[2]["reference"], format!("{registry}/t-pubchain/c:3.0-1"));
    assert_eq!(report[2]["tags"], serde_json::json!(["3.0-1", "latest"]));
    assert!(report[2]["digest"].as_str().unwrap().starts_with("sha256:"), "{}", report[2]);
    // Both tags are in the registry: drop the local images and pull them back.
    for tag in ["3.0-1", "latest"] {
        let reference = format!("{registry}/t-pubchain/c:{tag}");
        docker(&["rmi", &reference]);
        docker(&["pull", &reference]);
    }

    let again = tree.run(&["publish", ".", "--json", "--no-pull"]).success();
    assert!(push_order(&again).is_empty(), "nothing is pushed twice:\n{}", again.stdout());
    let planned: Vec<Value> = events(&again).into_iter().filter(|e| e["event"] == "planned").collect();
    assert!(planned.iter().all(|e| e["state"] == "published"), "{planned:?}");
    assert!(published_report(&tree).is_empty());

    // The registry answers everything: no daemon is needed, nor connected to.
    for command in ["status", "publish"] {
        let output = run_without_daemon(&tree, &[command, "."]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{command} without a daemon: {stderr}");
        assert!(!stderr.contains("Docker is not running"), "{stderr}");
    }
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_failed_verification_is_never_pushed_nor_are_its_descendants() {
    let env = test_env();
    let registry = &env.registry;
    let tree = chain(&env, registry, "t-pubverify")
        .file("b/test.sh", "#!/bin/sh\necho b is broken\nexit 1\n")
        .chmod_x("b/test.sh");
    let run = tree.run(&["publish", ".", "--json", "--no-pull"]).expect_code(1);
    assert_eq!(push_order(&run), ["a"]);
    assert_eq!(
        final_states(&run),
        [("a", "published"), ("b", "error"), ("c", "skipped")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let status = tree.run(&["status", ".", "--select", "b"]).success();
    assert!(status.stdout().contains("b  2.0  built: in the daemon, not in the registry"), "{}", status.stdout());
    assert_eq!(published_report(&tree).len(), 1);
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn images_already_in_the_daemon_are_verified_before_they_are_pushed() {
    let env = test_env();
    let registry = &env.registry;
    let tree = tree(registry, "t-pubbuilt", "")
        .image("app", "app", "1", &format!("FROM {}\n", env.base_image))
        .file("app/test.sh", "#!/bin/sh\necho verifying \"$1\"\n")
        .chmod_x("app/test.sh");
    tree.run(&["build", ".", "--no-pull"]).success();
    let run = tree.run(&["publish", ".", "--json"]).success();
    let planned = events(&run).into_iter().find(|e| e["event"] == "planned").unwrap();
    assert_eq!(planned["state"], "built");
    let app = events(&run).into_iter().find(|e| e["event"] == "finished").unwrap();
    assert_eq!(app["state"], "published");
    assert!(app["reason"].as_str().unwrap().starts_with("verified; pushed sha256:"), "{app}");
    let log = std::fs::read_to_string(tree.path().join("imgraph-logs/app.log")).unwrap();
    assert!(log.contains(&format!("verifying {registry}/t-pubbuilt/app:1")), "{log}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn wrong_credentials_fail_with_the_fix_and_a_rerun_with_the_right_ones_publishes() {
    let env = test_env();
    let registry = &env.auth_registry;
    let config = |password: &str| format!("username = \"{}\"\npassword = \"{password}\"\n", env.auth_user);
    let bad =
        tree(registry, "t-pubauth", &config("wrong")).image("app", "app", "1", &format!("FROM {}\n", env.base_image));
    let run = bad.run(&["publish", ".", "--no-pull"]).expect_code(1);
    assert!(run.stdout().lines().any(|l| l.starts_with("app ") && l.contains(" error ")), "{}", run.stdout());
    assert!(
        run.stdout().contains("authentication failed") && run.stdout().contains("docker login"),
        "{}",
        run.stdout()
    );

    let good = bad.file(
        "images.toml",
        format!("registry = \"{registry}\"\nnamespace = \"t-pubauth\"\n{}", config(&env.auth_password)),
    );
    let run = good.run(&["publish", ".", "--no-pull", "--json"]).success();
    assert_eq!(final_states(&run), [("app".to_owned(), "published".to_owned())]);
}

#[test]
fn publish_needs_a_registry() {
    let tree =
        TestTree::new().file("images.toml", "namespace = \"t-noreg\"\n").image("app", "app", "1", "FROM scratch\n");
    let run = tree.run(&["publish", "."]).expect_code(3);
    assert!(run.stderr().contains("publish needs a registry"), "{}", run.stderr());
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_registry_stopped_mid_run_fails_the_push_and_a_rerun_completes() {
    let env = test_env();
    let mut registry = OwnRegistry::start();
    let tree = tree(&registry.address, "t-pubstop", "")
        .image("a", "a", "1", &format!("FROM {}\n", env.base_image))
        .image("b", "b", "1", "FROM {{ \"a\" | image_tag }}\nRUN sleep 3\n");
    let mut publish = Background::start(&tree, &["publish", ".", "--json", "--no-pull"]);
    publish.wait_for(|line| line.contains("\"finished\"") && line.contains("\"name\":\"a\""));
    registry.stop();
    let (code, seen) = publish.finish();
    assert_eq!(code, Some(1), "{}", seen.join("\n"));
    let finished: Vec<Value> = seen
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "finished")
        .collect();
    assert_eq!(finished[0]["state"], "published", "{finished:?}");
    assert_eq!(finished[1]["name"], "b");
    assert_eq!(finished[1]["state"], "error");
    let reason = finished[1]["reason"].as_str().unwrap();
    assert!(reason.contains("cannot push") && reason.contains(&registry.address), "{reason}");

    registry.restart();
    let rerun = tree.run(&["publish", ".", "--json", "--no-pull"]).success();
    assert_eq!(push_order(&rerun), ["b"], "only what is missing is pushed");
    assert_eq!(summary(&rerun)["exit_code"], 0);
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn nightly_tags_every_image_and_its_references_once_per_run() {
    let env = test_env();
    let tree = TestTree::new()
        .file("images.toml", "namespace = \"t-nightly\"\n")
        .image("base", "base", "1.0", &format!("FROM {}\n", env.base_image))
        .image("app", "app", "2.0", "FROM {{ \"base\" | image_tag }}\n");
    let run = tree.run(&["build", ".", "--nightly", "--json"]).success();
    let labels: Vec<String> = events(&run)
        .iter()
        .filter(|e| e["event"] == "planned")
        .map(|e| e["label"].as_str().unwrap().to_owned())
        .collect();
    let date = labels[0].rsplit('-').next().unwrap().to_owned();
    assert_eq!(date.len(), 8, "{labels:?}");
    assert_eq!(labels, [format!("t-nightly/base:1.0-{date}"), format!("t-nightly/app:2.0-{date}")]);
    let parent = docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"org.opencontainers.image.base.name\"}}",
        &format!("t-nightly/app:2.0-{date}"),
    ]);
    assert_eq!(parent, format!("t-nightly/base:1.0-{date}"));
    assert!(Path::new(&tree.path().join("imgraph-logs/app.log")).exists());
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_loopback_registry_serving_tls_is_checked_over_https_as_dockerd_does() {
    let env = test_env();
    // docker-pkg's setup: `localhost`, a self-signed CA in `ca_bundle`.
    let ca = TestCa::new();
    let registry = OwnRegistry::start_tls(&ca.server_cert("registry", &["localhost", "127.0.0.1"]));
    let port = registry.address.rsplit(':').next().unwrap();
    let tree = tree(&format!("localhost:{port}"), "t-tlsreg", &format!("ca_bundle = \"{}\"\n", ca.cert.display()))
        .image("app", "app", "1", &format!("FROM {}\n", env.base_image));
    let status = tree.run(&["status", "."]).success();
    assert_eq!(status.stdout(), "app  1  to-build: 404 from registry, not in the daemon\n");
    // Without it too: loopback registries are insecure to dockerd, which then does not verify certificates.
    let without_ca = tree.file("images.toml", format!("registry = \"localhost:{port}\"\nnamespace = \"t-tlsreg\"\n"));
    let status = without_ca.run(&["status", "."]).success();
    assert_eq!(status.stdout(), "app  1  to-build: 404 from registry, not in the daemon\n");
    // Both over HTTPS (the registry speaks HTTP/2 only over TLS).
    let log = registry.log();
    assert_eq!(log.matches(r#""HEAD /v2/t-tlsreg/app/manifests/1 HTTP/2.0" 404"#).count(), 2, "{log}");
}
