//! `imgraph build` and `imgraph status` end to end, against the real daemon of `scripts/with-test-env.sh` and the
//! shared test registries (`crate::fixtures`).

use std::process::Command;

use serde_json::Value;

use crate::harness::{
    Background, TestEnv, TestTree, docker, events, final_states, run_without_daemon, summary, test_env,
};

/// A tree whose images live under a namespace of their own, so tests can share the daemon.
fn tree(namespace: &str, extra_config: &str) -> TestTree {
    TestTree::new().file("images.toml", format!("namespace = \"{namespace}\"\n{extra_config}"))
}

/// base <- {left, right} <- top; top is verified by a script that runs the image.
fn diamond(env: &TestEnv, namespace: &str) -> TestTree {
    let base = &env.base_image;
    tree(namespace, "")
        .image("base", "base", "1.0", &format!("FROM {base}\nRUN echo base > /base\n"))
        .image("left", "left", "1.0", "FROM {{ \"base\" | image_tag }}\nRUN sleep 1 && cat /base > /left\n")
        .image("right", "right", "1.0", "FROM {{ \"base\" | image_tag }}\nRUN sleep 1 && echo right > /right\n")
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

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_diamond_builds_in_parallel_then_nothing_is_rebuilt() {
    let env = test_env();
    let tree = diamond(&env, "t-diamond");
    let run = tree.run(&["build", ".", "--jobs", "2", "--json"]).success();
    assert_eq!(
        final_states(&run),
        [("base", "verified"), ("left", "verified"), ("right", "verified"), ("top", "verified")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(summary(&run)["exit_code"], 0);
    // left and right ran at once: both builds started before either finished.
    let order: Vec<String> = events(&run)
        .iter()
        .filter(|e| matches!(e["name"].as_str(), Some("left" | "right")))
        .filter(|e| e["event"] == "finished" || e["step"] == "build")
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, ["started", "started", "finished", "finished"], "{}", run.stdout());
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

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_failed_build_skips_its_descendants_and_not_its_siblings() {
    let env = test_env();
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

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_failed_verification_blocks_descendants() {
    let env = test_env();
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

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn published_images_are_not_rebuilt() {
    let env = test_env();
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

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_registry_behind_htpasswd_is_checked_with_credentials() {
    let env = test_env();
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

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_registry_that_is_down_is_an_error_and_nothing_is_built() {
    let env = test_env();
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
    let output = run_without_daemon(&tree, &["build", "."]);
    assert_eq!(output.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Docker is not running. Please start Docker and try again."), "{stderr}");
    assert!(stderr.contains("no-docker.sock"), "{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn the_example_tree_builds_with_nothing_pulled() {
    test_env();
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

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn the_context_follows_dockerignore_with_exceptions() {
    let env = test_env();
    let base = &env.base_image;
    let tree = tree("t-ignore", "")
        .image("app", "app", "1", &format!("FROM {base}\nCOPY . /ctx/\n"))
        .file("app/.dockerignore", "# comment\n*.log\n!keep.log\nsecret/\n**/*.o\n/build/tmp\n")
        .file("app/debug.log", "no")
        .file("app/keep.log", "yes")
        .file("app/secret/key", "no")
        .file("app/src/main.c", "yes")
        .file("app/src/deep/main.o", "no")
        .file("app/build/tmp", "no")
        .file("app/src/build/tmp", "yes");
    tree.run(&["build", "."]).success();
    let listing = docker(&["run", "--rm", "--network", "none", "t-ignore/app:1", "find", "/ctx", "-type", "f"]);
    let mut files: Vec<&str> = listing.lines().collect();
    files.sort_unstable();
    assert_eq!(
        files,
        [
            "/ctx/.dockerignore",
            "/ctx/Dockerfile",
            "/ctx/Dockerfile.template",
            "/ctx/changelog",
            "/ctx/keep.log",
            "/ctx/src/build/tmp",
            "/ctx/src/main.c"
        ]
    );
}

/// A registry that answers every request with 500, as no real registry does on demand.
fn failing_registry() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buffer = [0; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    address
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_registry_answering_500_is_an_error_and_nothing_is_built() {
    let env = test_env();
    let registry = failing_registry();
    let tree = TestTree::new()
        .file("images.toml", format!("registry = \"{registry}\"\nnamespace = \"t-500\"\n"))
        .image("app", "app", "1.0", &format!("FROM {}\n", env.base_image));
    let status = tree.run(&["status", "."]).expect_code(1);
    assert_eq!(status.stdout(), "app  1.0  error: registry answered 500 after 3 tries\n");
    let run = tree.run(&["build", ".", "--json"]).expect_code(1);
    let app = events(&run).into_iter().find(|e| e["event"] == "finished").expect("a finished event");
    assert_eq!(app["state"], "error");
    assert!(!tree.path().join("imgraph-logs/app.log").exists(), "nothing was built");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_verification_that_hangs_is_stopped_by_the_timeout() {
    let env = test_env();
    let tree = tree("t-verifyhang", "")
        .image("base", "base", "1", &format!("FROM {}\n", env.base_image))
        .file("base/test.sh", "#!/bin/sh\necho hanging\nsleep 60\n")
        .chmod_x("base/test.sh");
    let run = tree.run(&["build", ".", "--verify-timeout", "1", "--json"]).expect_code(1);
    let base = events(&run).into_iter().find(|e| e["event"] == "finished").expect("a finished event");
    assert_eq!(base["state"], "error");
    assert!(base["reason"].as_str().unwrap().starts_with("verification timed out after 1s"), "{base}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn ctrl_c_stops_running_builds_and_leaves_no_containers() {
    let env = test_env();
    let tree = tree("t-interrupt", "")
        .image("slow", "slow", "1", &format!("FROM {}\nRUN sleep 60 # t-interrupt\n", env.base_image))
        .image("child", "child", "1", "FROM {{ \"slow\" | image_tag }}\n");
    let mut build = Background::start(&tree, &["build", ".", "--json"]);
    build.wait_for(|line| line.contains("\"started\"") && line.contains("\"build\""));
    // Let the RUN container start before interrupting.
    let running = || docker(&["ps", "--no-trunc", "--format", "{{.Command}}"]).contains("t-interrupt");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !running() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(running(), "the RUN step started:\n{}", build.seen.join("\n"));
    let interrupted = std::time::Instant::now();
    build.interrupt();
    let (code, seen) = build.finish();
    assert!(interrupted.elapsed() < std::time::Duration::from_secs(30), "it stopped promptly");
    assert_eq!(code, Some(130), "{}", seen.join("\n"));
    let summary: Value = serde_json::from_str(seen.last().expect("a summary")).unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["cancelled"], 2, "{summary}");
    // The daemon removes the RUN container once the build is cancelled.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let leftovers = || docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]).contains("t-interrupt");
    while leftovers() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(!leftovers(), "no container of the interrupted build is left");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn published_parents_are_pulled_and_a_failed_pull_fails_only_who_needs_it() {
    let env = test_env();
    let registry = &env.registry;
    let parent = format!("{registry}/t-pull/base:1.0");
    docker(&["tag", &env.base_image, &parent]);
    docker(&["push", &parent]);
    docker(&["rmi", &parent]);
    let missing = format!("{registry}/t-pull/nowhere:1");
    let tree = TestTree::new()
        .file(
            "images.toml",
            format!("registry = \"{registry}\"\nnamespace = \"t-pull\"\nbase_images = [\"{missing}\"]\n"),
        )
        .image("base", "base", "1.0", "FROM scratch\nCOPY not-here /\n")
        .image("child", "child", "1", "FROM {{ \"base\" | image_tag }}\nRUN true\n")
        .image("orphan", "orphan", "1", &format!("FROM {missing}\n"));
    let run = tree.run(&["build", ".", "--json"]).expect_code(1);
    assert_eq!(
        final_states(&run),
        [("child", "verified"), ("orphan", "error")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let orphan = events(&run).into_iter().find(|e| e["event"] == "finished" && e["name"] == "orphan").unwrap();
    assert!(orphan["reason"].as_str().unwrap().starts_with(&format!("cannot pull {missing}")), "{orphan}");
    let log = std::fs::read_to_string(tree.path().join("imgraph-logs/child.log")).unwrap();
    assert!(log.contains(&format!("# pull {parent}")), "{log}");
}

/// `imgraph build` with `builder = "buildkit"`.
fn buildkit_tree(namespace: &str) -> TestTree {
    tree(namespace, "builder = \"buildkit\"\n")
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn buildkit_builds_cache_mounts_and_copies_from_a_tree_image() {
    let env = test_env();
    let base = &env.base_image;
    // Each version's RUN lists the cache mount, then leaves a file of its own in it.
    let child = |version: &str| {
        format!(
            "FROM {base}\nCOPY --from={{{{ \"parent\" | image_tag }}}} /parent-file /parent-file\n\
             RUN --mount=type=cache,target=/cache,id=t-buildkit-cache sh -c 'ls /cache > /seen; touch /cache/from-{version}'\n"
        )
    };
    let tree = tree("t-buildkit", "builder = \"buildkit\"\ncontainer_limits = \"memory=1g\"\n")
        .image("parent", "parent", "1", &format!("FROM {base}\nRUN echo parent > /parent-file\n"))
        .image("child", "child", "1", &child("1"));
    let run = tree.run(&["build", ".", "--json"]).success();
    assert_eq!(
        final_states(&run),
        [("child", "verified"), ("parent", "verified")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let log = std::fs::read_to_string(tree.path().join("imgraph-logs/child.log")).unwrap();
    let progress: Vec<&str> = log.lines().filter(|l| l.starts_with('#') && !l.starts_with("# ")).collect();
    assert!(progress.iter().any(|l| l.contains("] RUN --mount=type=cache,target=/cache")), "{log}");
    assert!(progress.iter().any(|l| l.contains(" DONE ") && l.ends_with('s')), "{log}");
    assert!(log.contains("warning: BuildKit does not apply container_limits"), "{log}");
    // The parent's file was copied; the cache mount was empty.
    let child1 = docker(&["run", "--rm", "--network", "none", "t-buildkit/child:1", "cat", "/parent-file", "/seen"]);
    assert_eq!(child1, "parent");

    // A new version of the child runs its RUN again, with --use-cache: it finds what the first run left.
    let tree = tree.image("child", "child", "2", &child("2"));
    let again = tree.run(&["build", ".", "--use-cache", "--json"]).success();
    assert_eq!(final_states(&again), [("child".to_owned(), "verified".to_owned())]);
    assert_eq!(docker(&["run", "--rm", "--network", "none", "t-buildkit/child:2", "cat", "/seen"]), "from-1");
    let version = r#"{{index .Config.Labels "org.opencontainers.image.version"}}"#;
    assert_eq!(docker(&["image", "inspect", "--format", version, "t-buildkit/child:2"]), "2");
    // Without --use-cache, dockerd 20.10's BuildKit gives the RUN an empty cache mount (as the first build got).
    let tree = tree.image("child", "child", "3", &child("3"));
    tree.run(&["build", ".", "--json"]).success();
    assert_eq!(docker(&["run", "--rm", "--network", "none", "t-buildkit/child:3", "cat", "/seen"]), "");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn buildkit_shows_a_failed_runs_output_in_the_failure_tail() {
    let env = test_env();
    // The output (42) is not in the command, which the error message repeats.
    let tree = buildkit_tree("t-buildkit-fail").image(
        "broken",
        "broken",
        "1",
        &format!("FROM {}\nRUN echo \"output-$((6 * 7))\"; exit 7\n", env.base_image),
    );
    let run = tree.run(&["build", ".", "--json"]).expect_code(1);
    let broken = events(&run).into_iter().find(|e| e["event"] == "finished").expect("a finished event");
    assert_eq!(broken["state"], "error");
    let reason = broken["reason"].as_str().unwrap();
    let (why, tail) = reason.split_once("\n--- last output:\n").expect("the output's tail");
    assert!(why.starts_with("build failed: ") && why.ends_with("exit code: 7"), "{reason}");
    assert!(tail.lines().any(|l| l.starts_with('#') && l.ends_with(" output-42")), "{reason}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn buildkit_frontend_features_this_daemon_lacks_fail_clearly() {
    let env = test_env();
    let base = &env.base_image;
    // dockerd 20.10's built-in Dockerfile frontend predates heredocs; `# syntax=` asks for a frontend image, which
    // the daemon must pull (here from a registry nobody serves, as docker/dockerfile is offline).
    let tree = buildkit_tree("t-buildkit-frontend")
        .image("heredoc", "heredoc", "1", &format!("FROM {base}\nRUN <<EOT\necho hi > /hi\nEOT\n"))
        .image(
            "syntax",
            "syntax",
            "1",
            &format!("# syntax=127.0.0.1:1/imgraph-test/dockerfile:1\nFROM {base}\nRUN true\n"),
        );
    let run = tree.run(&["build", ".", "--json"]).expect_code(1);
    let mut reasons: Vec<(String, String)> = events(&run)
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["reason"].as_str().unwrap().to_owned()))
        .collect();
    // The two build in parallel: they finish in either order.
    reasons.sort();
    let [(heredoc, heredoc_reason), (syntax, syntax_reason)] = &reasons[..] else { panic!("{reasons:#?}") };
    assert_eq!((heredoc.as_str(), syntax.as_str()), ("heredoc", "syntax"));
    assert!(heredoc_reason.contains("dockerfile parse error line 3: unknown instruction: ECHO"), "{heredoc_reason}");
    assert!(syntax_reason.contains("failed to solve with frontend gateway.v0"), "{syntax_reason}");
    assert!(
        syntax_reason.contains("#3 resolve image config for 127.0.0.1:1/imgraph-test/dockerfile:1"),
        "{syntax_reason}"
    );
}
