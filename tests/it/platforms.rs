//! Multi-platform images end to end: linux/amd64 natively and linux/arm64 under QEMU in the private daemon (and
//! in a second daemon standing in for a native arm64 builder), one index per tag in a real registry.

use std::collections::BTreeSet;
use std::time::Duration;

use imgraph::config::Config;
use imgraph::registry::manifest::{Descriptor, ManifestPlatform, TagContent};
use imgraph::registry::{ClientOptions, RegistryClient, RetryPolicy, TagState};
use serde_json::Value;

use crate::harness::{TestEnv, TestTree, docker, events, final_states, test_env};

const PLATFORMS: &str = "platforms = [\"linux/amd64\", \"linux/arm64\"]\n";

fn client() -> RegistryClient {
    let options = ClientOptions {
        retry: RetryPolicy { tries: 2, first_delay: Duration::from_millis(10), max_delay: Duration::from_millis(50) },
        docker_config_dir: None,
        ..ClientOptions::from_env()
    };
    RegistryClient::with_options(&Config::defaults(), options).expect("client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn linux(architecture: &str, variant: Option<&str>) -> ManifestPlatform {
    ManifestPlatform { os: "linux".into(), architecture: architecture.into(), variant: variant.map(str::to_owned) }
}

/// A busybox base for both platforms in the registry: each platform's image pushed by the daemon, then one index
/// under `REGISTRY/NS/busybox:1`, which the trees list in `base_images`.
fn multi_platform_base(env: &TestEnv, namespace: &str) -> String {
    let registry = &env.registry;
    let repository = format!("{namespace}/busybox");
    let client = client();
    let mut manifests = Vec::new();
    for (local, tag, architecture, variant) in
        [(&env.base_image, "amd64", "amd64", None), (&env.arm64_base_image, "arm64", "arm64", Some("v8"))]
    {
        let reference = format!("{registry}/{repository}:{tag}");
        docker(&["tag", local, &reference]);
        docker(&["push", &reference]);
        let digest = match runtime().block_on(client.tag_state(registry, &repository, tag)).expect("pushed") {
            TagState::Present { digest: Some(digest) } => digest,
            other => panic!("{reference}: {other:?}"),
        };
        let descriptor =
            runtime().block_on(client.descriptor(registry, &repository, &digest)).expect("HEAD").expect("pushed");
        manifests.push(Descriptor { platform: Some(linux(architecture, variant)), ..descriptor });
    }
    runtime().block_on(client.put_index(registry, &repository, &["1".to_owned()], &manifests)).expect("index");
    format!("{registry}/{repository}:1")
}

/// `a <- b <- c` for amd64 and arm64, each recording `uname -m` at build time; `c` verified on each platform by a
/// script that checks all three records against `IMGRAPH_PLATFORM`.
fn chain(env: &TestEnv, namespace: &str, extra_config: &str) -> TestTree {
    let base = multi_platform_base(env, namespace);
    let verify = r#"#!/bin/sh
set -e
case "$IMGRAPH_PLATFORM" in
    linux/amd64) want=x86_64 ;;
    linux/arm64) want=aarch64 ;;
    *) echo "unexpected IMGRAPH_PLATFORM=$IMGRAPH_PLATFORM"; exit 1 ;;
esac
got=$(docker run --rm --network none --platform "$IMGRAPH_PLATFORM" "$1" cat /arch-a /arch-b /arch-c | tr '\n' ' ')
[ "$got" = "$want $want $want " ] || { echo "$IMGRAPH_PLATFORM: got '$got', want $want"; exit 1; }
echo "$IMGRAPH_PLATFORM: $got"
"#;
    TestTree::new()
        .file(
            "images.toml",
            format!(
                "registry = \"{}\"\nnamespace = \"{namespace}\"\nbase_images = [\"{base}\"]\n{PLATFORMS}{extra_config}",
                env.registry
            ),
        )
        .image("a", "a", "1.0", &format!("FROM {base}\nRUN uname -m > /arch-a\n"))
        .image("b", "b", "2.0", "FROM {{ \"a\" | image_tag }}\nRUN uname -m > /arch-b\n")
        .image("c", "c", "3.0", "FROM {{ \"b\" | image_tag }}\nRUN uname -m > /arch-c\n")
        .file("c/test.sh", verify)
        .chmod_x("c/test.sh")
}

/// The platforms of the index under `repository:tag`, and its digest.
fn index_of(registry: &str, repository: &str, tag: &str) -> (String, BTreeSet<String>, Vec<Descriptor>) {
    match runtime().block_on(client().tag_content(registry, repository, tag)).expect("registry") {
        Some(TagContent::Index { digest, manifests }) => {
            let platforms = manifests.iter().filter_map(|m| Some(m.platform.as_ref()?.to_string())).collect();
            (digest, platforms, manifests)
        }
        other => panic!("{repository}:{tag} is not an index: {other:?}"),
    }
}

/// The local name imgraph gives `path:tag` of the test registry for a platform (`linux-arm64`).
fn local_name(env: &TestEnv, slug: &str, path_and_tag: &str) -> String {
    format!("imgraph.local/{slug}/{}/{path_and_tag}", env.registry.replace(':', "-"))
}

/// The architecture of `reference` in the daemon at `host`; `None` when that daemon does not have it.
fn architecture_in(host: &str, reference: &str) -> Option<String> {
    let output = std::process::Command::new("docker")
        .args(["-H", host, "image", "inspect", "--format", "{{.Architecture}}", reference])
        .output()
        .expect("docker");
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn started(run: &crate::harness::Run, step: &str) -> Vec<String> {
    let mut found: Vec<String> = events(run)
        .iter()
        .filter(|e| e["event"] == "started" && e["step"] == step)
        .map(|e| format!("{} {}", e["name"].as_str().unwrap_or(""), e["platform"].as_str().unwrap_or("-")))
        .collect();
    found.sort();
    found
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_chain_for_two_platforms_is_published_as_one_index_per_tag_and_a_rerun_pushes_nothing() {
    let env = test_env();
    let tree = chain(&env, "t-mp", "");
    let run = tree.run(&["publish", ".", "--json"]).success();
    let expected = [("a", "published"), ("b", "published"), ("c", "published")];
    assert_eq!(final_states(&run), expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    // Each platform built on its own, verified on its own.
    assert_eq!(
        started(&run, "build"),
        ["a linux/amd64", "a linux/arm64", "b linux/amd64", "b linux/arm64", "c linux/amd64", "c linux/arm64"]
    );
    assert_eq!(started(&run, "verify").len(), 6);
    let verify_log = std::fs::read_to_string(tree.path().join("imgraph-logs/c.linux-arm64.log")).expect("log");
    assert!(verify_log.contains("linux/arm64: aarch64 aarch64 aarch64"), "{verify_log}");

    let want: BTreeSet<String> = ["linux/amd64", "linux/arm64/v8"].map(str::to_owned).into();
    let (digest, platforms, manifests) = index_of(&env.registry, "t-mp/c", "3.0");
    assert_eq!(platforms, want);
    assert_eq!(index_of(&env.registry, "t-mp/c", "latest").0, digest, "latest is the same index");
    // No tag but the version and latest: the platforms were pushed by digest.
    let tags: Value = runtime().block_on(async {
        let url = format!("http://{}/v2/t-mp/c/tags/list", env.registry);
        reqwest::get(url).await.unwrap().json().await.unwrap()
    });
    let mut tags: Vec<&str> = tags["tags"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    tags.sort_unstable();
    assert_eq!(tags, ["3.0", "latest"]);

    // published.json and the finished event carry the index digest and each platform's.
    let report: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(tree.path().join("imgraph-logs/published.json")).unwrap())
            .unwrap();
    let c = report.iter().find(|p| p["name"] == "c").expect("c published");
    assert_eq!(c["digest"], digest);
    let by_platform: Vec<(String, String)> = c["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["platform"].as_str().unwrap().to_owned(), p["digest"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        by_platform,
        [
            ("linux/amd64".to_owned(), manifests[0].digest.clone()),
            ("linux/arm64".to_owned(), manifests[1].digest.clone())
        ]
    );

    // In the daemon, the version tag names the image of the daemon's own platform, whichever was pushed last.
    let local_tag = format!("{}/t-mp/c:3.0", env.registry);
    assert_eq!(docker(&["image", "inspect", "--format", "{{.Architecture}}", &local_tag]), "amd64");

    // Pulled back by platform, each image is what its platform built.
    for (platform, machine) in [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")] {
        let reference = format!("{}/t-mp/c:3.0", env.registry);
        docker(&["pull", "--platform", platform, &reference]);
        let out = docker(&["run", "--rm", "--network", "none", "--platform", platform, &reference, "cat", "/arch-c"]);
        assert_eq!(out, machine);
    }

    let again = tree.run(&["publish", ".", "--json"]).success();
    assert!(started(&again, "push").is_empty() && started(&again, "build").is_empty(), "{}", again.stdout());
    let status = tree.run(&["status", ".", "--json"]).success();
    for line in events(&status) {
        assert_eq!(line["state"], "published", "{line}");
        let platforms: Vec<&str> =
            line["platforms"].as_array().unwrap().iter().map(|p| p["platform"].as_str().unwrap()).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    }
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_platform_missing_from_the_registry_is_named_and_only_it_is_built_again() {
    let env = test_env();
    let base = multi_platform_base(&env, "t-mp-missing");
    let tree = TestTree::new()
        .file(
            "images.toml",
            format!(
                "registry = \"{}\"\nnamespace = \"t-mp-missing\"\nbase_images = [\"{base}\"]\n{PLATFORMS}",
                env.registry
            ),
        )
        .image("a", "a", "1.0", &format!("FROM {base}\nRUN uname -m > /arch\n"));
    tree.run(&["publish", ".", "--json"]).success();
    let (_, _, manifests) = index_of(&env.registry, "t-mp-missing/a", "1.0");
    let (amd64, arm64) = (&manifests[0].digest, &manifests[1].digest);
    // The registry loses the arm64 image, and the daemon its build.
    let deleted = runtime().block_on(async {
        let url = format!("http://{}/v2/t-mp-missing/a/manifests/{arm64}", env.registry);
        reqwest::Client::new().delete(url).send().await.unwrap().status()
    });
    assert_eq!(deleted, 202);
    docker(&["rmi", &local_name(&env, "linux-arm64", "t-mp-missing/a:1.0")]);

    let status = tree.run(&["status", ".", "--json"]).success();
    let line = &events(&status)[0];
    assert_eq!(line["state"], "to-build", "{line}");
    assert!(line["reason"].as_str().unwrap().contains("to-build: linux/arm64"), "{line}");
    assert_eq!(line["platforms"][0]["state"], "published");
    assert_eq!(line["platforms"][1]["state"], "to-build");

    let run = tree.run(&["publish", ".", "--json"]).success();
    assert_eq!(started(&run, "build"), ["a linux/arm64"]);
    let (_, platforms, again) = index_of(&env.registry, "t-mp-missing/a", "1.0");
    assert_eq!(platforms.len(), 2);
    assert_eq!(&again[0].digest, amd64, "the amd64 image is kept as it was");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_verification_failure_on_one_platform_blocks_the_tag_on_every_platform() {
    let env = test_env();
    let base = multi_platform_base(&env, "t-mp-verify");
    let fails_on_arm64 = "#!/bin/sh\n[ \"$IMGRAPH_PLATFORM\" != linux/arm64 ] || { echo 'arm64 is broken'; exit 1; }\n";
    let tree = TestTree::new()
        .file(
            "images.toml",
            format!(
                "registry = \"{}\"\nnamespace = \"t-mp-verify\"\nbase_images = [\"{base}\"]\n{PLATFORMS}",
                env.registry
            ),
        )
        .image("a", "a", "1.0", &format!("FROM {base}\nRUN true\n"))
        .file("a/test.sh", fails_on_arm64)
        .chmod_x("a/test.sh")
        .image("b", "b", "1.0", "FROM {{ \"a\" | image_tag }}\n");
    let run = tree.run(&["publish", ".", "--json", "--junit", "junit.xml"]).expect_code(1);
    let finished: Vec<Value> = events(&run).into_iter().filter(|e| e["event"] == "finished").collect();
    let a = finished.iter().find(|e| e["name"] == "a").expect("a finished");
    assert_eq!(a["state"], "error");
    assert!(a["reason"].as_str().unwrap().contains("a linux/arm64: "), "{a}");
    assert!(a["reason"].as_str().unwrap().contains("arm64 is broken"), "{a}");
    let b = finished.iter().find(|e| e["name"] == "b").expect("b finished");
    assert_eq!(b["state"], "skipped");
    // Nothing was pushed, not even the amd64 image that passed.
    assert!(started(&run, "push").is_empty());
    let state = runtime().block_on(client().tag_state(&env.registry, "t-mp-verify/a", "1.0")).unwrap();
    assert_eq!(state, TagState::Absent);
    // JUnit: a case per platform, and one for the index that was not put.
    let junit = std::fs::read_to_string(tree.path().join("junit.xml")).unwrap();
    assert!(junit.contains(r#"name="a:1.0 linux/amd64" time="#), "{junit}");
    let arm64 = junit.split(r#"name="a:1.0 linux/arm64""#).nth(1).expect("a case for arm64");
    assert!(arm64.split("</testcase>").next().unwrap().contains("arm64 is broken"), "{junit}");
    assert!(junit.contains(r#"name="a:1.0" time="#), "{junit}");
    // b's amd64 image needs only a's, which passed: it is built; its arm64 image is not attempted.
    assert!(junit.contains(r#"name="b:1.0 linux/amd64" time="#), "{junit}");
    let b_arm64 = junit.split(r#"name="b:1.0 linux/arm64""#).nth(1).expect("a case for b on arm64");
    assert!(b_arm64.split("</testcase>").next().unwrap().contains("<skipped"), "{junit}");
    assert!(junit.contains(r#"tests="6" failures="2" errors="0" skipped="2""#), "{junit}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_second_daemon_builds_the_platform_the_config_gives_it() {
    let env = test_env();
    let builders = format!("[builders]\n\"linux/arm64\" = \"{}\"\n", env.docker_host_2);
    let tree = chain(&env, "t-mp-builders", &builders);
    tree.run(&["build", ".", "--json"]).success();
    let (arm64, amd64) = (
        local_name(&env, "linux-arm64", "t-mp-builders/c:3.0"),
        local_name(&env, "linux-amd64", "t-mp-builders/c:3.0"),
    );
    assert_eq!(architecture_in(&env.docker_host_2, &arm64).as_deref(), Some("arm64"));
    assert_eq!(architecture_in(&env.docker_host, &arm64), None, "not built by the default");
    assert_eq!(architecture_in(&env.docker_host, &amd64).as_deref(), Some("amd64"));
    assert_eq!(architecture_in(&env.docker_host_2, &amd64), None);
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn an_ssh_builder_builds_its_platform_reached_as_the_docker_cli_reaches_it() {
    let env = test_env();
    let path = [("PATH", env.ssh_path.as_str())];
    // A user the server does not let in: the error names the endpoint and says what ssh said.
    let refused = env.ssh_host.replace("ssh://root@", "ssh://nobody@");
    let tree = chain(&env, "t-mp-ssh", &format!("[builders]\n\"linux/arm64\" = \"{refused}\"\n"));
    let run = tree.run_with(&["status", "."], &path).expect_code(4);
    assert!(run.stderr().contains(&format!("cannot connect to the Docker daemon at {refused}")), "{}", run.stderr());
    assert!(run.stderr().contains("Permission denied"), "{}", run.stderr());
    assert!(run.stderr().contains("Check that ssh reaches that machine"), "{}", run.stderr());
    // The second daemon, through sshd: it builds and verifies arm64, the default daemon amd64.
    let tree = chain(&env, "t-mp-ssh", &format!("[builders]\n\"linux/arm64\" = \"{}\"\n", env.ssh_host));
    let run = tree.run_with(&["build", ".", "--json"], &path).success();
    let expected = [("a", "verified"), ("b", "verified"), ("c", "verified")];
    assert_eq!(final_states(&run), expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let local = local_name(&env, "linux-arm64", "t-mp-ssh/c:3.0");
    assert_eq!(architecture_in(&env.docker_host_2, &local).as_deref(), Some("arm64"));
    assert_eq!(architecture_in(&env.docker_host, &local), None, "not built by the default daemon");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_child_for_a_platform_its_parent_without_declared_platforms_cannot_give_fails_alone() {
    let env = test_env();
    let tree = TestTree::new()
        .file("images.toml", "namespace = \"t-mp-native\"\n")
        .image("a", "a", "1.0", &format!("FROM {}\n", env.base_image))
        .image("b", "b", "1.0", "FROM {{ \"a\" | image_tag }}\n")
        .file("b/control", "Source: b\n\nPackage: b\nPlatforms: linux/arm64\n")
        .image("other", "other", "1.0", &format!("FROM {}\n", env.base_image));
    let run = tree.run(&["build", ".", "--json"]).expect_code(1);
    let finished: Vec<Value> = events(&run).into_iter().filter(|e| e["event"] == "finished").collect();
    let b = finished.iter().find(|e| e["name"] == "b").expect("b finished");
    assert_eq!(b["state"], "error");
    assert!(
        b["reason"]
            .as_str()
            .unwrap()
            .contains("needs linux/arm64 of a, which builds only its daemon's platform (linux/amd64)"),
        "{b}"
    );
    for name in ["a", "other"] {
        let image = finished.iter().find(|e| e["name"] == name).expect("finished");
        assert_eq!(image["state"], "verified", "{image}");
    }
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_base_image_outside_the_tree_without_a_declared_platform_is_reported_before_anything_is_built() {
    let env = test_env();
    // The base is a plain amd64 image in the registry: no arm64 image under its tag.
    let base = format!("{}/t-mp-base-amd64/busybox:1", env.registry);
    docker(&["tag", &env.base_image, &base]);
    docker(&["push", &base]);
    let tree = TestTree::new()
        .file("images.toml", format!("registry = \"{}\"\nnamespace = \"t-mp-base-amd64\"\n", env.registry))
        .image("a", "a", "1.0", &format!("FROM {base}\nRUN true\n"))
        .file("a/control", "Source: a\n\nPackage: a\nPlatforms: linux/amd64, linux/arm64\n")
        .image("b", "b", "1.0", "FROM {{ \"a\" | image_tag }}\n")
        .image("other", "other", "1.0", &format!("FROM {}\n", env.base_image));
    let why = format!("its base image {base} has no linux/arm64 image in its registry (it has linux/amd64)");
    let status = tree.run(&["status", ".", "--json"]).expect_code(1);
    let a = events(&status).into_iter().find(|line| line["name"] == "a").expect("a listed");
    assert_eq!(a["state"], "error", "{a}");
    assert_eq!(a["reason"], why.as_str(), "{a}");
    let run = tree.run(&["build", ".", "--json"]).expect_code(1);
    assert!(started(&run, "build").iter().all(|s| s.starts_with("other ")), "{:?}", started(&run, "build"));
    let expected = [("a", "error"), ("b", "skipped"), ("other", "verified")];
    assert_eq!(final_states(&run), expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn a_from_line_pinned_to_a_platform_is_built_for_that_platform_on_every_platform() {
    let env = test_env();
    let base = multi_platform_base(&env, "t-mp-pinned");
    // A tool image for amd64 only, used by a stage pinned to amd64 in both platforms' builds. With BuildKit:
    // the classic builder refuses `COPY --from` a stage of another platform.
    let tool = format!("{}/t-mp-pinned/tool:1", env.registry);
    docker(&["tag", &env.base_image, &tool]);
    docker(&["push", &tool]);
    let dockerfile = format!(
        "FROM --platform=linux/amd64 {tool} AS tool\nRUN uname -m > /tool-arch\n\
         FROM {base}\nCOPY --from=tool /tool-arch /tool-arch\nRUN uname -m > /arch\n"
    );
    let tree = TestTree::new()
        .file(
            "images.toml",
            format!(
                "registry = \"{}\"\nnamespace = \"t-mp-pinned\"\nbase_images = [\"{base}\", \"{tool}\"]\n\
                 builder = \"buildkit\"\n{PLATFORMS}",
                env.registry
            ),
        )
        .image("a", "a", "1.0", &dockerfile);
    let status = tree.run(&["status", ".", "--json"]).success();
    let a = events(&status).into_iter().find(|line| line["name"] == "a").expect("a listed");
    assert_eq!(a["state"], "to-build", "{a}");
    tree.run(&["build", ".", "--json"]).success();
    for (slug, arch) in [("linux-amd64", "x86_64"), ("linux-arm64", "aarch64")] {
        let local = local_name(&env, slug, "t-mp-pinned/a:1.0");
        let platform = slug.replace('-', "/");
        let out = docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--platform",
            &platform,
            &local,
            "cat",
            "/tool-arch",
            "/arch",
        ]);
        assert_eq!(out, format!("x86_64\n{arch}"), "{slug}");
    }
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn buildkit_builds_each_platform_on_its_parents_images_for_it() {
    let env = test_env();
    let tree = chain(&env, "t-mp-buildkit", "builder = \"buildkit\"\n");
    let run = tree.run(&["build", ".", "--json"]).success();
    let expected = [("a", "verified"), ("b", "verified"), ("c", "verified")];
    assert_eq!(final_states(&run), expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let log = std::fs::read_to_string(tree.path().join("imgraph-logs/c.linux-arm64.log")).expect("log");
    // BuildKit's progress, its FROM the parent's arm64 image.
    assert!(log.contains("] FROM imgraph.local/linux-arm64/"), "{log}");
    assert!(log.contains("linux/arm64: aarch64 aarch64 aarch64"), "{log}");
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn prune_removes_each_platforms_old_images_in_its_builder() {
    let env = test_env();
    let base = multi_platform_base(&env, "t-mp-prune");
    let tree = TestTree::new()
        .file(
            "images.toml",
            format!(
                "registry = \"{}\"\nnamespace = \"t-mp-prune\"\nbase_images = [\"{base}\"]\n{PLATFORMS}\
                 [builders]\n\"linux/arm64\" = \"{}\"\n",
                env.registry, env.docker_host_2
            ),
        )
        .image("a", "a", "1.0", &format!("FROM {base}\nRUN uname -m > /arch\n"));
    tree.run(&["build", "."]).success();
    tree.run(&["update", "a", ".", "--reason", "* Rebuild."]).success();
    tree.run(&["build", "."]).success();
    let local = |slug: &str, tag: &str| local_name(&env, slug, &format!("t-mp-prune/a:{tag}"));
    let present = |host: &str, reference: &str| architecture_in(host, reference).is_some();
    assert!(present(&env.docker_host_2, &local("linux-arm64", "1.0")));
    tree.run(&["prune", "."]).success();
    assert!(!present(&env.docker_host_2, &local("linux-arm64", "1.0")), "the old arm64 image is gone");
    assert!(!present(&env.docker_host, &local("linux-amd64", "1.0")), "the old amd64 image is gone");
    assert!(present(&env.docker_host_2, &local("linux-arm64", "1.0-s1")));
    assert!(present(&env.docker_host, &local("linux-amd64", "1.0-s1")));
}
