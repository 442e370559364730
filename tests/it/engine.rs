//! The Docker engine client against the real test daemon: connect, inspect, pull, build, the context and its digest.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use imgraph::engine::{
    self, ApiRequirement, BuildError, BuildRequest, BuilderKind, ContainerLimits, Engine, EngineError,
};
use imgraph::reference::Reference;

use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{TestEnv, TestTree, test_env};

/// The `docker` CLI against the test daemon (`DOCKER_HOST` is exported by with-test-env.sh).
fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("run docker");
    assert!(output.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn connect(env: &TestEnv) -> Engine {
    Engine::connect_to(Some(&env.docker_host)).await.expect("connect to the test daemon")
}

/// Builds `dir` with `dockerfile`, returning the result and the logged lines.
async fn build(
    engine: &Engine,
    dir: &Path,
    dockerfile: &str,
    tag: &str,
    labels: &BTreeMap<String, String>,
    builder: BuilderKind,
) -> (Result<String, BuildError>, Vec<String>) {
    let empty = ContainerLimits::default();
    let build_args = BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]);
    let root = dir.canonicalize().expect("the context exists");
    let request = BuildRequest {
        tree_root: &root,
        context_dir: dir,
        dockerfile,
        tag,
        build_args: &build_args,
        labels,
        no_cache: false,
        limits: &empty,
        platform: None,
        builder,
    };
    let mut lines = Vec::new();
    let result = engine.build(&request, &mut |line| lines.push(line.to_owned())).await;
    (result, lines)
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn connects_and_inspects() {
    let env = test_env();
    let engine = Engine::connect().await.expect("connect through DOCKER_HOST");
    assert_eq!(engine.inspect("imgraph-test/engine-missing:1").await.expect("inspect"), None);
    let base = connect(&env).await.inspect(&env.base_image).await.expect("inspect").expect("the base image");
    assert!(base.id.starts_with("sha256:"), "{base:?}");
}

#[tokio::test]
async fn unreachable_daemon() {
    let missing = tempfile::tempdir().expect("temp dir");
    let host = format!("unix://{}/docker.sock", missing.path().display());
    match Engine::connect_to(Some(&host)).await {
        Err(EngineError::Unreachable { host: reported, .. }) => assert_eq!(reported, host),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    // Nothing listens on port 1.
    let refused = Engine::connect_to(Some("tcp://127.0.0.1:1")).await;
    assert!(matches!(refused, Err(EngineError::Unreachable { .. })), "{refused:?}");
}

/// Whether `line` is how `builder` logs a RUN's output line `text`: as is (classic), or `#N 0.123 text` (BuildKit).
fn is_output(builder: BuilderKind, line: &str, text: &str) -> bool {
    match builder {
        BuilderKind::Classic => line == text,
        BuilderKind::BuildKit => line.starts_with('#') && line.ends_with(&format!(" {text}")),
    }
}

/// Build args, labels and the tag reach the image, and the result is its id, whichever the builder.
async fn builds_with_labels_tag_and_build_args(builder: BuilderKind, tag: &str) {
    let env = test_env();
    let engine = connect(&env).await;
    let tree = TestTree::new().file("hello", "hi\n");
    let dockerfile = format!(
        "FROM {}\nARG GREETING\nCOPY hello /hello\nRUN test \"$GREETING\" = hello && grep -q hi /hello && echo \"$GREETING\"\n",
        env.base_image
    );
    let labels = BTreeMap::from([("dev.imgraph.test".to_owned(), "engine".to_owned())]);
    let (result, lines) = build(&engine, tree.path(), &dockerfile, tag, &labels, builder).await;
    let id = result.expect("build succeeds");
    let first = match builder {
        BuilderKind::Classic => "Step 1/",
        BuilderKind::BuildKit => "#1 [internal] load remote build context",
    };
    assert!(lines.first().is_some_and(|l| l.starts_with(first)), "{lines:#?}");
    assert!(lines.iter().any(|l| is_output(builder, l, "hello")), "{lines:#?}");
    assert!(lines.iter().all(|l| !l.contains('\n')), "{lines:#?}");
    let image = engine.inspect(tag).await.expect("inspect").expect("the tagged image");
    assert_eq!(image.id, id);
    assert_eq!(image.labels.get("dev.imgraph.test").map(String::as_str), Some("engine"));
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn classic_builds_with_labels_tag_and_build_args() {
    builds_with_labels_tag_and_build_args(BuilderKind::Classic, "imgraph-test/engine-build:1").await;
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn buildkit_builds_with_labels_tag_and_build_args() {
    builds_with_labels_tag_and_build_args(BuilderKind::BuildKit, "imgraph-test/engine-buildkit:1").await;
}

/// A failed RUN is [`BuildError::Failed`] with the daemon's message, its output is logged, and no container is
/// left, whichever the builder.
async fn failed_run_leaves_no_container(builder: BuilderKind, marker: &str, message: &str) {
    let env = test_env();
    let engine = connect(&env).await;
    let tree = TestTree::new();
    let dockerfile = format!("FROM {}\nRUN echo {marker} && exit 3\n", env.base_image);
    let tag = format!("imgraph-test/{marker}:1");
    let (result, lines) = build(&engine, tree.path(), &dockerfile, &tag, &BTreeMap::new(), builder).await;
    match result {
        Err(BuildError::Failed(error)) => assert!(error.contains(message), "{error}"),
        other => panic!("expected BuildError::Failed, got {other:?}"),
    }
    assert!(lines.iter().any(|l| is_output(builder, l, marker)), "{lines:#?}");
    let containers = docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
    assert!(!containers.contains(marker), "a container of the failed step is left:\n{containers}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn classic_failed_run_leaves_no_container() {
    failed_run_leaves_no_container(BuilderKind::Classic, "engine-failing-step", "non-zero code: 3").await;
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn buildkit_failed_run_leaves_no_container() {
    failed_run_leaves_no_container(BuilderKind::BuildKit, "engine-buildkit-failing-step", "exit code: 3").await;
}

/// A fake daemon of Engine API `api`: it answers the version negotiation and the ping, and must see no build.
async fn fake_daemon(api: &str) -> (MockServer, String) {
    let server = MockServer::start().await;
    let version = serde_json::json!({"Version": "18.06.3-ce", "ApiVersion": api, "MinAPIVersion": "1.12"});
    Mock::given(method("GET"))
        .and(path_regex("/version$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(version))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("/_ping$"))
        .respond_with(ResponseTemplate::new(200).set_body_string("OK"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/build$"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let host = format!("tcp://{}", server.address());
    (server, host)
}

#[tokio::test]
async fn a_platform_build_on_a_daemon_older_than_api_1_38_is_refused_before_building() {
    let (_server, host) = fake_daemon("1.37").await;
    let engine = Engine::connect_to(Some(&host)).await.expect("the fake daemon answers");
    let tree = TestTree::new();
    let root = tree.path().canonicalize().unwrap();
    let (empty, limits) = (BTreeMap::new(), ContainerLimits::default());
    let request = BuildRequest {
        tree_root: &root,
        context_dir: &root,
        dockerfile: "FROM scratch\n",
        tag: "imgraph-test/old:1",
        build_args: &empty,
        labels: &empty,
        no_cache: true,
        limits: &limits,
        platform: Some("linux/arm64"),
        builder: BuilderKind::Classic,
    };
    match engine.build(&request, &mut |_| {}).await {
        Err(BuildError::Engine(error @ EngineError::TooOld { .. })) => assert_eq!(
            error.to_string(),
            format!(
                "the Docker daemon at {host} speaks API 1.37; builds for a platform (declared Platforms) need 1.38 or \
                 later (Docker 18.06)"
            )
        ),
        other => panic!("expected EngineError::TooOld, got {other:?}"),
    }
}

#[tokio::test]
async fn buildkit_on_a_daemon_older_than_api_1_39_is_refused_before_building() {
    let (_server, host) = fake_daemon("1.38").await;
    let engine = Engine::connect_to(Some(&host)).await.expect("the fake daemon answers");
    let tree = TestTree::new();
    let (result, lines) =
        build(&engine, tree.path(), "FROM scratch\n", "imgraph-test/old:1", &BTreeMap::new(), BuilderKind::BuildKit)
            .await;
    match result {
        Err(BuildError::Engine(error @ EngineError::TooOld { .. })) => assert_eq!(
            error.to_string(),
            format!("the Docker daemon at {host} speaks API 1.38; BuildKit builds need 1.39 or later (Docker 18.09)")
        ),
        other => panic!("expected EngineError::TooOld, got {other:?}"),
    }
    assert!(lines.is_empty(), "{lines:#?}");
    // The same check, for any feature: met exactly, and not.
    let need = |min| ApiRequirement { feature: "builds for another platform", min, docker: "x" };
    assert!(engine.require_api(need((1, 38))).await.is_ok());
    assert!(matches!(engine.require_api(need((2, 0))).await, Err(EngineError::TooOld { .. })));
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn context_follows_dockerignore_keeps_modes_and_follows_symlinks() {
    let env = test_env();
    let engine = connect(&env).await;
    let tree = TestTree::new()
        .file(".dockerignore", "*.txt\n!keep.txt\nsecret/\n**/*.tmp\ndir\n!dir/keep\n")
        .file("keep.txt", "kept")
        .file("drop.txt", "dropped")
        .file("sub/nested.txt", "anchored patterns do not reach here")
        .file("secret/key", "hidden")
        .file("x.tmp", "tmp")
        .file("a/b/x.tmp", "tmp")
        .file("a/b/y", "kept")
        .file("dir/keep", "re-included")
        .file("dir/other", "excluded")
        .file("Dockerfile", "the directory's own Dockerfile is replaced")
        .file("run.sh", "#!/bin/sh\necho ran > /ran\n")
        .symlink("keep.txt", "link");
    std::fs::set_permissions(tree.path().join("run.sh"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let checks = [
        "test -f /ctx/keep.txt",
        "test ! -e /ctx/drop.txt",
        "test -f /ctx/sub/nested.txt",
        "test ! -e /ctx/secret",
        "test ! -e /ctx/x.tmp",
        "test ! -e /ctx/a/b/x.tmp",
        "test -f /ctx/a/b/y",
        "test -f /ctx/dir/keep",
        "test ! -e /ctx/dir/other",
        "test -f /ctx/.dockerignore",
        "grep -q rendered /ctx/Dockerfile",
        "test -f /ctx/link && test ! -L /ctx/link",
        "test \"$(cat /ctx/link)\" = kept",
        "/ctx/run.sh",
        "test -f /ran",
    ];
    let runs: String = checks.iter().map(|c| format!("RUN {c}\n")).collect();
    let dockerfile = format!("# rendered\nFROM {}\nCOPY . /ctx\n{runs}", env.base_image);
    let (result, lines) =
        build(&engine, tree.path(), &dockerfile, "imgraph-test/engine-ctx:1", &BTreeMap::new(), BuilderKind::Classic)
            .await;
    assert!(result.is_ok(), "{result:?}\n{lines:#?}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn builds_a_large_context() {
    let env = test_env();
    let engine = connect(&env).await;
    let tree = TestTree::new();
    let size = 50 * 1024 * 1024;
    let big = std::fs::File::create(tree.path().join("big")).expect("create");
    big.set_len(size).expect("grow");
    let dockerfile = format!("FROM {}\nCOPY big /big\nRUN test \"$(wc -c < /big)\" -eq {size}\n", env.base_image);
    let (result, lines) =
        build(&engine, tree.path(), &dockerfile, "imgraph-test/engine-big:1", &BTreeMap::new(), BuilderKind::Classic)
            .await;
    assert!(result.is_ok(), "{result:?}\n{lines:#?}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn pulls_from_a_registry() {
    let env = test_env();
    let engine = connect(&env).await;
    let pushed = format!("{}/engine/pulled:1", env.registry);
    docker(&["tag", &env.base_image, &pushed]);
    docker(&["push", &pushed]);
    docker(&["rmi", &pushed]);
    let mut lines = Vec::new();
    let reference = Reference::parse(&pushed).expect("a reference");
    engine.pull(&reference, None, None, &mut |l| lines.push(l.to_owned())).await.expect("pull");
    assert!(!lines.is_empty());
    assert!(engine.inspect(&pushed).await.expect("inspect").is_some());

    let missing = format!("{}/engine/missing:1", env.registry);
    match engine.pull(&Reference::parse(&missing).expect("a reference"), None, None, &mut |_| {}).await {
        Err(EngineError::Api(message)) => assert!(message.contains(&missing), "{message}"),
        other => panic!("expected EngineError::Api, got {other:?}"),
    }
}

#[test]
fn context_digest_follows_what_is_sent() {
    let tree = TestTree::new()
        .file(".dockerignore", "*.log\n")
        .file("app/main.sh", "echo 1\n")
        .file("debug.log", "noise")
        .symlink("app/main.sh", "link");
    let root = tree.path().canonicalize().expect("root");
    let digest = |dockerfile: &str| engine::context_digest(&root, tree.path(), dockerfile).expect("digest");
    let first = digest("FROM base\n");
    assert_eq!(first.len(), 64);
    assert_eq!(digest("FROM base\n"), first);
    assert_ne!(digest("FROM other\n"), first);

    std::fs::write(tree.path().join("debug.log"), "more noise").expect("write");
    assert_eq!(digest("FROM base\n"), first, "an ignored file changed");
    std::fs::write(tree.path().join("Dockerfile"), "replaced by the rendered one").expect("write");
    assert_eq!(digest("FROM base\n"), first, "the directory's Dockerfile is not sent");

    std::fs::write(tree.path().join("app/main.sh"), "echo 2\n").expect("write");
    let edited = digest("FROM base\n");
    assert_ne!(edited, first, "a sent file changed");
    let script = tree.path().join("app/main.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_ne!(digest("FROM base\n"), edited, "a mode changed");

    std::fs::write(tree.path().join("app/main.sh"), "echo 3\n").expect("write");
    assert_ne!(digest("FROM base\n"), edited, "a file sent through a link changed");

    let missing = tree.path().join("nope");
    match engine::context_digest(&root, &missing, "FROM base\n") {
        Err(BuildError::Context(message)) => assert!(message.contains("nope"), "{message}"),
        other => panic!("expected a context error, got {other:?}"),
    }
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn context_errors_abort_the_build() {
    let env = test_env();
    let engine = connect(&env).await;
    let tree = TestTree::new().file(".dockerignore", "a[\n").file("a", "");
    let dockerfile = format!("FROM {}\nCOPY a /a\n", env.base_image);
    for builder in [BuilderKind::Classic, BuilderKind::BuildKit] {
        let (result, _) =
            build(&engine, tree.path(), &dockerfile, "imgraph-test/engine-bad:1", &BTreeMap::new(), builder).await;
        match result {
            Err(BuildError::Context(message)) => assert!(message.contains(".dockerignore"), "{builder:?}: {message}"),
            other => panic!("{builder:?}: expected a context error, got {other:?}"),
        }
    }
}

/// The daemon's TLS listener and a client's `DOCKER_CERT_PATH` for it (from with-test-env.sh).
fn tls_env() -> (String, PathBuf) {
    let var = |name| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set by with-test-env.sh"));
    (var("IMGRAPH_TEST_TLS_HOST"), PathBuf::from(var("IMGRAPH_TEST_CERT_PATH")))
}

/// A one-image tree on the test base image.
fn tls_tree(env: &TestEnv) -> TestTree {
    TestTree::new().file("images.toml", "namespace = \"t-tls\"\n").image(
        "app",
        "app",
        "1.0",
        &format!("FROM {}\n", env.base_image),
    )
}

/// `imgraph status .` in `tree` against `host`, with TLS verification when `cert_path` is given.
fn status_over_tcp(tree: &TestTree, host: &str, cert_path: Option<&Path>) -> (Option<i32>, String, String) {
    let mut command = Command::new(crate::harness::IMGRAPH);
    command
        .args(["status", "."])
        .current_dir(tree.path())
        .env("XDG_CONFIG_HOME", tree.path().join(".no-user-config"))
        .env("DOCKER_HOST", host)
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    if let Some(dir) = cert_path {
        command.env("DOCKER_TLS_VERIFY", "1").env("DOCKER_CERT_PATH", dir);
    }
    let output = command.output().expect("run imgraph");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn connects_to_a_tls_daemon_with_client_certificates() {
    let env = test_env();
    let (host, certs) = tls_env();
    let tree = tls_tree(&env);
    let (code, stdout, stderr) = status_over_tcp(&tree, &host, Some(&certs));
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.starts_with("app "), "{stdout}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn missing_tls_files_are_named() {
    let env = test_env();
    let (host, certs) = tls_env();
    let tree = tls_tree(&env);
    let empty = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) = status_over_tcp(&tree, &host, Some(empty.path()));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read the CA certificate {}", empty.path().join("ca.pem").display())),
        "{stderr}"
    );

    // The daemon's CA alone: no client certificate to present.
    std::fs::copy(certs.join("ca.pem"), empty.path().join("ca.pem")).expect("copy ca.pem");
    let (code, _, stderr) = status_over_tcp(&tree, &host, Some(empty.path()));
    assert_eq!(code, Some(1), "{stderr}");
    let cert = empty.path().join("cert.pem");
    assert!(stderr.contains(&format!("cannot read the client certificate {}", cert.display())), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_tls_daemon_without_tls_verify_fails_cleanly() {
    let env = test_env();
    let (host, _) = tls_env();
    let (code, _, stderr) = status_over_tcp(&tls_tree(&env), &host, None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("it expects TLS") && stderr.contains("DOCKER_TLS_VERIFY=1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_daemon_certificate_from_another_ca_is_refused() {
    let env = test_env();
    let (host, certs) = tls_env();
    let other = tempfile::tempdir().expect("temp dir");
    for file in ["cert.pem", "key.pem"] {
        std::fs::copy(certs.join(file), other.path().join(file)).expect("copy");
    }
    // A certificate that did not sign the daemon's.
    std::fs::copy(certs.join("cert.pem"), other.path().join("ca.pem")).expect("copy");
    let (code, _, stderr) = status_over_tcp(&tls_tree(&env), &host, Some(other.path()));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("TLS with the Docker daemon at") && stderr.contains("UnknownIssuer"), "{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_client_certificate_the_daemon_refuses_is_named() {
    let env = test_env();
    let (host, certs) = tls_env();
    // The daemon's own certificate (serverAuth only) as the client's: the daemon refuses it after the handshake.
    let server = certs.parent().expect("the TLS dir").join("server");
    let other = tempfile::tempdir().expect("temp dir");
    for (from, file) in [(&certs, "ca.pem"), (&server, "cert.pem"), (&server, "key.pem")] {
        std::fs::copy(from.join(file), other.path().join(file)).expect("copy");
    }
    let (code, _, stderr) = status_over_tcp(&tls_tree(&env), &host, Some(other.path()));
    assert_eq!(code, Some(1), "{stderr}");
    // The daemon's alert, or (when it closes the connection first) a question about the certificate.
    assert!(stderr.contains("BadCertificate") || stderr.contains("does it accept the client certificate"), "{stderr}");
    assert!(stderr.contains(&other.path().display().to_string()), "{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn an_unreachable_tls_daemon_is_unreachable() {
    let env = test_env();
    let (_, certs) = tls_env();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let host = format!("tcp://127.0.0.1:{port}");
    let (code, _, stderr) = status_over_tcp(&tls_tree(&env), &host, Some(&certs));
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains(&format!("cannot connect to the Docker daemon at {host}")), "{stderr}");
    assert!(stderr.contains("Docker is not running. Please start Docker and try again."), "{stderr}");
}

/// A context whose links are checked: `(tree root, image dir)`.
fn linked_tree() -> (TestTree, PathBuf) {
    let tree = TestTree::new()
        .file("common/fpm/monitoring/status.sh", "echo status\n")
        .file("common/run.sh", "echo run\n")
        .file("php/fpm/app.conf", "conf\n")
        .symlink("../../common/fpm/monitoring", "php/fpm/monitoring")
        .symlink("../../common/run.sh", "php/fpm/run.sh");
    let dir = tree.path().join("php/fpm");
    (tree, dir)
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn linked_files_and_directories_inside_the_tree_are_sent_as_what_they_point_to() {
    let env = test_env();
    let engine = connect(&env).await;
    let (tree, dir) = linked_tree();
    let root = tree.path().canonicalize().expect("root");
    let dockerfile = format!(
        "FROM {}\nCOPY monitoring /srv/monitoring\nCOPY run.sh /run.sh\nRUN test -f /srv/monitoring/status.sh && \
         test ! -L /srv/monitoring && grep -q run /run.sh\n",
        env.base_image
    );
    let request = BuildRequest {
        tree_root: &root,
        context_dir: &dir,
        dockerfile: &dockerfile,
        tag: "imgraph-test/engine-links:1",
        build_args: &BTreeMap::new(),
        labels: &BTreeMap::new(),
        no_cache: true,
        limits: &ContainerLimits::default(),
        platform: None,
        builder: BuilderKind::Classic,
    };
    let mut lines = Vec::new();
    let result = engine.build(&request, &mut |line| lines.push(line.to_owned())).await;
    assert!(result.is_ok(), "{result:?}\n{lines:#?}");
}

#[test]
fn links_that_leave_the_tree_dangle_or_loop_are_errors_naming_them() {
    let (tree, dir) = linked_tree();
    let root = tree.path().canonicalize().expect("root");
    let digest = || engine::context_digest(&root, &dir, "FROM base\n");
    let followed = digest().expect("links inside the tree are followed");
    std::fs::write(tree.path().join("common/fpm/monitoring/status.sh"), "echo changed\n").expect("write");
    assert_ne!(digest().expect("digest"), followed, "the digest covers what a link points to");

    let error = |link: &str, target: &str| {
        let path = dir.join(link);
        std::os::unix::fs::symlink(target, &path).expect("symlink");
        let message = match digest() {
            Err(BuildError::Context(message)) => message,
            other => panic!("{link} -> {target}: expected a context error, got {other:?}"),
        };
        std::fs::remove_file(&path).expect("remove");
        assert!(message.contains(&path.display().to_string()), "{message}");
        message
    };
    assert!(error("passwd", "/etc/passwd").contains("outside the tree"));
    assert!(error("up", "../../..").contains("outside the tree"));
    assert!(error("dangling", "nowhere").contains("points to nothing"));
    assert!(error("loop", ".").contains("loops"));
    // Left out by .dockerignore: never followed, so never an error.
    std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd")).expect("symlink");
    std::fs::write(dir.join(".dockerignore"), "passwd\n").expect("write");
    digest().expect("an ignored link is not followed");
}
