//! `-v`/`-vv`/`-vvv`: each decision can be diagnosed from the logs alone (an auth failure, the Bearer flow, a
//! credential helper, a skipped child), no secret ever appears at any level, `--json` stdout stays pure; and
//! the shell integration (completions, man page).

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{IMGRAPH, TestTree, test_env};

/// `imgraph ARGS` in `tree` with extra environment variables; stdout and stderr as text.
fn imgraph(tree: &TestTree, args: &[&str], env: &[(&str, &Path)]) -> (Output, String, String) {
    let mut command = Command::new(IMGRAPH);
    command.args(args).current_dir(tree.path()).env("XDG_CONFIG_HOME", tree.path().join(".no-user-config"));
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run imgraph");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    (output, stdout, stderr)
}

#[track_caller]
fn assert_logged(stderr: &str, needles: &[&str]) {
    for needle in needles {
        assert!(stderr.lines().any(|l| l.contains(needle)), "no log line with `{needle}`:\n{stderr}");
    }
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn an_auth_failure_and_where_the_credentials_came_from_are_in_v() {
    let env = test_env();
    let tree = TestTree::new()
        .file(
            "images.toml",
            format!(
                "registry = \"{}\"\nnamespace = \"t-diag\"\nusername = \"{}\"\npassword = \"wrong\"\n",
                env.auth_registry, env.auth_user
            ),
        )
        .image("app", "app", "1.0", "FROM scratch\n");
    let (output, stdout, stderr) = imgraph(&tree, &["status", ".", "-v"], &[]);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_logged(
        &stderr,
        &[
            "registry answered 401",
            "the registry asked for authentication",
            "scheme=\"Basic\"",
            "credentials found registry=",
            "source=\"the config's username and password\"",
            "auth=\"Basic\"",
            "planned image=\"app\" tag=\"1.0\" state=\"error\"",
        ],
    );
    assert!(!stderr.contains("wrong"), "the password must not be logged:\n{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[tokio::test]
async fn the_bearer_flow_and_its_token_cache_are_in_vv() {
    let _env = test_env();
    let server = MockServer::start().await;
    let registry = server.address().to_string();
    let challenge = format!(r#"Bearer realm="http://{registry}/token",service="reg""#);
    Mock::given(method("HEAD"))
        .and(wiremock::matchers::header("authorization", "Bearer s3cr3t-t0ken"))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge.as_str()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"token":"s3cr3t-t0ken"}"#))
        .mount(&server)
        .await;
    let tree = TestTree::new()
        .file("images.toml", format!("registry = \"{registry}\"\nnamespace = \"ns\"\n"))
        .image("a", "a", "1.0", "FROM scratch\n")
        .image("b", "b", "1.0", "FROM scratch\n");
    // imgraph blocks: it runs on a thread of its own while the mock answers.
    let (output, stdout, stderr) =
        tokio::task::spawn_blocking(move || imgraph(&tree, &["status", ".", "-vv"], &[])).await.expect("imgraph");
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_logged(
        &stderr,
        &[
            "the registry asked for authentication",
            "scheme=\"Bearer\"",
            "token fetched",
            "auth=\"Bearer\"",
            "registry answered 404",
        ],
    );
    assert!(!stderr.contains("s3cr3t-t0ken"), "the token must not be logged:\n{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_credential_helper_lookup_is_in_v() {
    let env = test_env();
    let tree = TestTree::new()
        .file("images.toml", format!("registry = \"{}\"\nnamespace = \"t-diag-helper\"\n", env.auth_registry))
        .image("app", "app", "1.0", "FROM scratch\n")
        .file("docker/config.json", format!(r#"{{"credHelpers": {{"{}": "imgraphtest"}}}}"#, env.auth_registry))
        .file(
            "bin/docker-credential-imgraphtest",
            format!(
                "#!/bin/sh\nread server\nprintf '{{\"Username\":\"{}\",\"Secret\":\"{}\"}}' \n",
                env.auth_user, env.auth_password
            ),
        )
        .chmod_x("bin/docker-credential-imgraphtest");
    let path = format!("{}:{}", tree.path().join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let docker_config = tree.path().join("docker");
    let mut command = Command::new(IMGRAPH);
    command
        .args(["status", ".", "-v"])
        .current_dir(tree.path())
        .env("XDG_CONFIG_HOME", tree.path().join(".no-user-config"))
        .env("DOCKER_CONFIG", &docker_config)
        .env("PATH", path);
    let output = command.output().expect("run imgraph");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_logged(
        &stderr,
        &[
            "credentials found",
            "source=docker-credential-imgraphtest",
            "kind=\"username and password\"",
            "registry answered 404",
        ],
    );
    assert!(!stderr.contains(&env.auth_password), "the secret must not be logged:\n{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_skipped_child_names_its_failed_parent_in_v_and_json_stdout_stays_pure() {
    let env = test_env();
    let tree = TestTree::new()
        .file("images.toml", "namespace = \"t-diag-skip\"\n")
        .image("parent", "parent", "1.0", &format!("FROM {}\nRUN exit 3\n", env.base_image))
        .image("child", "child", "1.0", "FROM {{ \"parent\" | image_tag }}\n");
    let (output, stdout, stderr) = imgraph(&tree, &["build", ".", "--json", "-v", "--log-format", "json"], &[]);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    for line in stdout.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout not JSON: {line}: {e}"));
        assert!(event.get("event").is_some(), "only events on stdout: {line}");
    }
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stderr not JSON lines: {l}: {e}")))
        .collect();
    assert!(
        logs.iter().any(|l| l["message"].as_str().unwrap_or_default().starts_with("skipped")
            && l["image"] == "child"
            && l["because"] == "parent"),
        "{stderr}"
    );
    assert!(logs.iter().any(|l| l["message"] == "started" && l["image"] == "parent"), "{stderr}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn no_secret_in_any_log_of_a_full_publish() {
    let env = test_env();
    let test = "#!/bin/sh\nset -e\ndocker run --rm --network none \"$1\" true\n";
    let tree = TestTree::new()
        .file(
            "images.toml",
            format!(
                "registry = \"{}\"\nnamespace = \"t-diag-secret\"\nusername = \"{}\"\npassword = \"{}\"\nhttp_proxy = \"http://proxyuser:proxypass@127.0.0.1:9/\"\n",
                env.auth_registry, env.auth_user, env.auth_password
            ),
        )
        .image("a", "a", "1.0", &format!("FROM {}\n", env.base_image))
        .image("b", "b", "1.0", "FROM {{ \"a\" | image_tag }}\n")
        .file("b/test.sh", test)
        .chmod_x("b/test.sh");
    let (output, stdout, stderr) = imgraph(&tree, &["publish", ".", "--no-pull", "-vvv"], &[]);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", env.auth_user, env.auth_password));
    for secret in [env.auth_password.as_str(), basic.as_str(), "proxypass"] {
        assert!(!stderr.contains(secret) && !stdout.contains(secret), "a secret reached the output:\n{stderr}");
    }
    assert_logged(&stderr, &["pushing", "verification ended", "credentials found"]);
}

#[test]
fn bash_completion_registers_and_completes_image_names() {
    let script = Command::new(IMGRAPH).args(["completions", "bash"]).output().expect("completions");
    assert!(script.status.success());
    let check = Command::new("bash")
        .args(["-c", &format!("source <({IMGRAPH} completions bash) && complete -p imgraph")])
        .output()
        .expect("bash");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("imgraph"));
    // What the shell asks at TAB: `imgraph update <TAB>` in a tree lists its image names.
    let tree = TestTree::new().image("a", "alpha", "1.0", "FROM scratch\n").image("b", "beta", "1.0", "FROM scratch\n");
    let output = Command::new(IMGRAPH)
        .args(["--", "imgraph", "build", ".", "--select", "al"])
        .current_dir(tree.path())
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "4")
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_COMPLETE_SPACE", "true")
        .output()
        .expect("complete");
    let candidates = String::from_utf8_lossy(&output.stdout).replace('\u{b}', "\n");
    assert_eq!(candidates.trim(), "alpha", "{candidates}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let output = Command::new(IMGRAPH).args(["completions", shell]).output().expect("completions");
        assert!(output.status.success() && !output.stdout.is_empty(), "{shell}");
    }
}

#[test]
fn the_man_page_renders() {
    let page = Command::new(IMGRAPH).arg("man").output().expect("man");
    assert!(page.status.success());
    let text = String::from_utf8_lossy(&page.stdout);
    assert!(text.contains(".TH imgraph 1"), "{text}");
    for command in ["graph", "build", "publish", "update", "completions"] {
        assert!(text.contains(command), "{command}");
    }
}
