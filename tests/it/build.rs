//! `imgraph build` and `imgraph status` end to end, against the real daemon and registries of
//! `scripts/with-test-env.sh`.

use std::process::Command;

use serde_json::Value;

use crate::harness::{Run, TestEnv, TestTree, test_env};

/// A tree whose images live under a namespace of their own, so tests can share the daemon.
fn tree(namespace: &str, extra_config: &str) -> TestTree {
    TestTree::new().file("images.toml", format!("namespace = \"{namespace}\"\n{extra_config}"))
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("run docker");
    assert!(output.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn events(run: &Run) -> Vec<Value> {
    run.stdout().lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect()
}

/// The final state of each image, from the `finished` events.
fn final_states(run: &Run) -> Vec<(String, String)> {
    let mut states: Vec<(String, String)> = events(run)
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["state"].as_str().unwrap().to_owned()))
        .collect();
    states.sort();
    states
}

fn summary(run: &Run) -> Value {
    events(run).into_iter().find(|e| e["event"] == "summary").expect("a summary event")
}

/// base <- {left, right} <- top; top is verified by a script that runs the image.
fn diamond(env: &TestEnv, namespace: &str) -> TestTree {
    let base = &env.base_image;
    tree(namespace, "")
        .image("base", "base", "1.0", &format!("FROM {base}\nRUN echo base > /base\n"))
        .image("left", "left", "1.0", "FROM {{ \"base\" | image_tag }}\nRUN cat /base > /left\n")
        .image("right", "right", "1.0", "FROM {{ \"base\" | image_tag }}\nRUN echo right > /right\n")
        .image(
            "top",
            "top",
            "2.0",
            "FROM {{ \"left\" | image_tag }}\nCOPY --from={{ \"right\" | image_tag }} /right /right\nCOPY motd /etc/motd\n",
        )
        .file("top/motd", "hello\n")
        .file(
            "top/test.sh",
            "#!/bin/sh\nset -e\ndocker run --rm --network none \"$1\" cat /left /right /etc/motd | grep -q hello\necho top is fine\n",
        )
        .chmod_x("top/test.sh")
}

#[test]
fn a_diamond_builds_in_parallel_then_nothing_is_rebuilt() {
    let Some(env) = test_env() else { return };
    let tree = diamond(&env, "t-diamond");
    let run = tree.run(&["build", ".", "--jobs", "2", "--json"]).success();
    assert_eq!(
        final_states(&run),
        [("base", "verified"), ("left", "verified"), ("right", "verified"), ("top", "verified")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(summary(&run)["exit_code"], 0);
    let log = std::fs::read_to_string(tree.path().join("imgraph-logs/top.log")).unwrap();
    assert!(log.contains("top is fine"), "the verification output is in the log:\n{log}");
    let labels: Value = serde_json::from_str(&docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        "t-diamond/top:2.0",
    ]))
    .unwrap();
    assert_eq!(labels["org.opencontainers.image.version"], "2.0");
    assert_eq!(labels["org.opencontainers.image.base.name"], "t-diamond/left:1.0");
    assert!(labels["dev.imgraph.fingerprint"].as_str().unwrap().starts_with("sha256:"));

    // Everything is in the daemon now: a second run builds nothing.
    let again = tree.run(&["build", ".", "--json"]).success();
    let planned: Vec<String> = events(&again)
        .iter()
        .filter(|e| e["event"] == "planned")
        .map(|e| e["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(planned, ["built"; 4]);
    assert!(final_states(&again).is_empty(), "nothing was built");
    let status = tree.run(&["status", "."]).success();
    assert!(status.stdout().contains("top    2.0  built: in the daemon (no registry)"), "{}", status.stdout());
}

#[test]
fn a_failed_build_skips_its_descendants_and_not_its_siblings() {
    let Some(env) = test_env() else { return };
    let base = &env.base_image;
    let tree = tree("t-runfail", "")
        .image("base", "base", "1", &format!("FROM {base}\n"))
        .image("broken", "broken", "1", "FROM {{ \"base\" | image_tag }}\nRUN echo about to fail; exit 7 # t-runfail\n")
        .image("child", "child", "1", "FROM {{ \"broken\" | image_tag }}\n")
        .image("sibling", "sibling", "1", "FROM {{ \"base\" | image_tag }}\nRUN true\n");
    let run = tree.run(&["build", ".", "--json"]).expect_code(1);
    assert_eq!(
        final_states(&run),
        [("base", "verified"), ("broken", "error"), ("child", "skipped"), ("sibling", "verified")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let finished = events(&run);
    let broken = finished.iter().find(|e| e["event"] == "finished" && e["name"] == "broken").unwrap();
    assert!(broken["reason"].as_str().unwrap().contains("non-zero code: 7"), "{broken}");
    let child = finished.iter().find(|e| e["event"] == "finished" && e["name"] == "child").unwrap();
    assert_eq!(child["reason"], "not attempted: broken failed");
    // No intermediate container of the failed RUN is left behind.
    let leftovers = docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
    assert!(!leftovers.contains("t-runfail"), "leftover containers:\n{leftovers}");
}

#[test]
fn a_failed_verification_blocks_descendants() {
    let Some(env) = test_env() else { return };
    let base = &env.base_image;
    let tree = tree("t-verifyfail", "")
        .image("base", "base", "1", &format!("FROM {base}\n"))
        .file("base/test.sh", "#!/bin/sh\necho checking \"$1\"\nexit 3\n")
        .chmod_x("base/test.sh")
        .image("child", "child", "1", "FROM {{ \"base\" | image_tag }}\n");
    let run = tree.run(&["build", "."]).expect_code(1);
    let stdout = run.stdout();
    assert!(stdout.contains("base   1    error"), "{stdout}");
    assert!(stdout.contains("verification failed with exit code 3"), "{stdout}");
    assert!(stdout.contains("checking t-verifyfail/base:1"), "the output's tail is shown:\n{stdout}");
    assert!(stdout.contains("child  1    skipped"), "{stdout}");
}

#[test]
fn published_images_are_not_rebuilt() {
    let Some(env) = test_env() else { return };
    let registry = &env.registry;
    let reference = format!("{registry}/t-published/app:1.0");
    docker(&["tag", &env.base_image, &reference]);
    docker(&["push", &reference]);
    docker(&["rmi", &reference]);
    let tree = TestTree::new()
        .file("images.toml", format!("registry = \"{registry}\"\nnamespace = \"t-published\"\n"))
        .image("app", "app", "1.0", "FROM scratch\nCOPY nothing /nothing\n")
        .image("fresh", "fresh", "0.1", &format!("FROM {}\n", env.base_image));
    let status = tree.run(&["status", ".", "--json"]).success();
    let states: Vec<(String, String)> = status
        .stdout()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                format!("{}: {}", v["state"].as_str().unwrap(), v["reason"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("app", "published: 200 from registry"), ("fresh", "to-build: 404 from registry, not in the daemon")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    // `app` would fail to build (its context lacks `nothing`): it must not be attempted.
    let run = tree.run(&["build", ".", "--json"]).success();
    assert_eq!(final_states(&run), [("fresh".to_owned(), "verified".to_owned())]);
}

#[test]
fn a_registry_behind_htpasswd_is_checked_with_credentials() {
    let Some(env) = test_env() else { return };
    let registry = &env.auth_registry;
    let reference = format!("{registry}/t-auth/app:1.0");
    let login = Command::new("docker")
        .args(["login", "-u", &env.auth_user, "--password-stdin", registry])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(env.auth_password.as_bytes())?;
            child.wait()
        })
        .expect("docker login");
    assert!(login.success());
    docker(&["tag", &env.base_image, &reference]);
    docker(&["push", &reference]);
    let config = |user: &str, password: &str| {
        format!("registry = \"{registry}\"\nnamespace = \"t-auth\"\nusername = \"{user}\"\npassword = \"{password}\"\n")
    };
    let good = TestTree::new().file("images.toml", config(&env.auth_user, &env.auth_password)).image(
        "app",
        "app",
        "1.0",
        "FROM scratch\n",
    );
    let run = good.run(&["status", "."]).success();
    assert!(run.stdout().contains("published: 200 from registry"), "{}", run.stdout());
    let bad = TestTree::new().file("images.toml", config(&env.auth_user, "wrong")).image(
        "app",
        "app",
        "1.0",
        "FROM scratch\n",
    );
    let run = bad.run(&["status", "."]).expect_code(1);
    assert!(run.stdout().contains("error: ") && run.stdout().contains("authentication"), "{}", run.stdout());
}

#[test]
fn a_registry_that_is_down_is_an_error_and_nothing_is_built() {
    let Some(env) = test_env() else { return };
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let tree = TestTree::new()
        .file("images.toml", format!("registry = \"127.0.0.1:{port}\"\nnamespace = \"t-down\"\n"))
        .image("app", "app", "1.0", &format!("FROM {}\n", env.base_image));
    let run = tree.run(&["build", ".", "--json"]).expect_code(1);
    let app = events(&run).into_iter().find(|e| e["event"] == "finished").expect("a finished event");
    assert_eq!(app["state"], "error");
    assert!(app["reason"].as_str().unwrap().contains(&format!("127.0.0.1:{port}")), "{app}");
    assert!(!std::path::Path::new(&tree.path().join("imgraph-logs/app.log")).exists(), "nothing was built");
}

#[test]
fn an_unreachable_daemon_is_a_named_error() {
    let tree = TestTree::new().image("app", "app", "1", "FROM scratch\n");
    let missing = tree.path().join("no-docker.sock");
    let output = Command::new(crate::harness::IMGRAPH)
        .args(["build", "."])
        .current_dir(tree.path())
        .env("DOCKER_HOST", format!("unix://{}", missing.display()))
        .env("XDG_CONFIG_HOME", tree.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Docker is not running. Please start Docker and try again."), "{stderr}");
    assert!(stderr.contains("no-docker.sock"), "{stderr}");
}

#[test]
fn the_example_tree_builds_with_nothing_pulled() {
    let Some(_env) = test_env() else { return };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let logs = tempfile::tempdir().unwrap();
    let args = ["build", "examples", "--no-pull", "--json", "--log-dir"].map(String::from);
    let mut args = args.to_vec();
    args.push(logs.path().to_string_lossy().into_owned());
    let run = crate::harness::run_in(root, &args, &[]);
    let states: Vec<String> = events(&run)
        .iter()
        .filter(|e| e["event"] == "planned")
        .map(|e| e["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states.len(), 4);
    assert_eq!(summary(&run)["exit_code"], 0, "{}", run.stdout());
}
