//! Failure stays where it belongs, end to end against the real daemon and registry: a tree with every kind of
//! broken image still builds, verifies and publishes everything else, skips exactly what depends on a broken
//! image (naming it), and exits 1 at the end.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::harness::{TestEnv, TestTree, events, final_states, test_env};

/// A messy tree: good images (one with a non-RFC-2822 trailer date, one whose context is made of links into
/// the tree), and one broken image of each kind, each with a dependent.
fn messy(env: &TestEnv, registry: &str, namespace: &str) -> TestTree {
    let base = &env.base_image;
    TestTree::new()
        .file("images.toml", format!("registry = \"{registry}\"\nnamespace = \"{namespace}\"\n"))
        .image("base", "base", "1.0", &format!("FROM {base}\nRUN echo base > /base\n"))
        .image("app", "app", "1.0", "FROM {{ \"base\" | image_tag }}\nRUN cat /base\n")
        // What a 2023 production-images changelog really had: dpkg only warns.
        .file(
            "operator/changelog",
            "operator (0.3-1) wikimedia; urgency=medium\n\n  * Entrypoint.\n\n -- Luca <l@example.org>  Thu Mar 9 11:41:33 2023 +0100\n",
        )
        .file("operator/Dockerfile.template", "FROM {{ \"base\" | image_tag }}\n")
        // php-fpm's `monitoring -> ../../common/fpm/monitoring`.
        .file("common/fpm/monitoring/status.sh", "#!/bin/sh\necho ok\n")
        .chmod_x("common/fpm/monitoring/status.sh")
        .image("php/fpm", "fpm", "8.1", "FROM {{ \"base\" | image_tag }}\nCOPY monitoring /srv/monitoring\nRUN /srv/monitoring/status.sh\n")
        .symlink("../../common/fpm/monitoring", "php/fpm/monitoring")
        // No header: no name, left out.
        .file("nameless/changelog", "this is not a changelog\n")
        .file("nameless/Dockerfile.template", "FROM scratch\n")
        // A template error, and a dependent.
        .image("tmpl", "tmpl", "1.0", "FROM {{ \"base\" | image_tag }}\nRUN {{ oops }\n")
        .image("tmpl-child", "tmpl-child", "1.0", "FROM {{ \"tmpl\" | image_tag }}\n")
        // A tag Docker refuses, and a dependent.
        .image("rc", "rc", "1.0~rc1", "FROM {{ \"base\" | image_tag }}\n")
        .image("rc-child", "rc-child", "1.0", "FROM {{ \"rc\" | image_tag }}\n")
        // A cycle, and a dependent.
        .image("cyc-a", "cyc-a", "1.0", "FROM {{ \"cyc-b\" | image_tag }}\n")
        .image("cyc-b", "cyc-b", "1.0", "FROM {{ \"cyc-a\" | image_tag }}\n")
        .image("cyc-child", "cyc-child", "1.0", "FROM {{ \"cyc-a\" | image_tag }}\n")
        // An unknown dependency.
        .image("lost", "lost", "1.0", "FROM {{ \"base\" | image_tag }}\n")
        .file("lost/control", "Package: lost\nDepends: nowhere\n")
}

fn states(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut states: Vec<(String, String)> = pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    states.sort();
    states
}

/// The reason each image ended with, from the `finished` events.
fn reasons(run: &crate::harness::Run) -> BTreeMap<String, String> {
    events(run)
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["reason"].as_str().unwrap().to_owned()))
        .collect()
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn one_broken_image_leaves_the_others_built_and_published() {
    let env = test_env();
    let tree = messy(&env, &env.registry, "t-isolation");

    let status = tree.run(&["status", "."]).expect_code(1);
    let status_lines = status.stdout();
    assert!(status_lines.contains("tmpl-child  1.0      skipped: needs tmpl, which cannot be built"), "{status_lines}");
    assert!(status.stderr().contains("nameless/changelog:1: no changelog entry"), "{}", status.stderr());

    let build = tree.run(&["build", ".", "--json", "--no-pull", "--junit", "junit.xml"]).expect_code(1);
    let broken = [("tmpl", "error"), ("rc", "error"), ("cyc-a", "error"), ("cyc-b", "error"), ("lost", "error")];
    let blocked = [("tmpl-child", "skipped"), ("rc-child", "skipped"), ("cyc-child", "skipped")];
    let good = [("base", "verified"), ("app", "verified"), ("operator", "verified"), ("fpm", "verified")];
    let expected: Vec<(&str, &str)> = good.iter().chain(&broken).chain(&blocked).copied().collect();
    assert_eq!(final_states(&build), states(&expected), "{}", build.stdout());
    let why = reasons(&build);
    assert!(why["tmpl"].contains("tmpl/Dockerfile.template:2: syntax error"), "{}", why["tmpl"]);
    assert!(why["rc"].contains("is not a valid Docker tag"), "{}", why["rc"]);
    assert!(why["cyc-a"].contains("dependency cycle"), "{}", why["cyc-a"]);
    assert!(why["lost"].contains("unknown dependency `nowhere`"), "{}", why["lost"]);
    assert_eq!(why["cyc-child"], "needs cyc-a, which cannot be built");
    assert_eq!(why["rc-child"], "needs rc, which cannot be built");
    let summary: Value = events(&build).into_iter().find(|e| e["event"] == "summary").unwrap();
    assert_eq!((summary["succeeded"].as_u64(), summary["skipped"].as_u64()), (Some(4), Some(3)));

    // JUnit: a test case per image, failures with their reason, the skipped ones skipped.
    let xml = std::fs::read_to_string(tree.path().join("junit.xml")).expect("junit.xml");
    let parsed = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; s = E.parse(sys.argv[1]).getroot()[0]; \
                      print(s.get('tests'), s.get('failures'), s.get('skipped'), len(s.findall('testcase')))",
        ])
        .arg(tree.path().join("junit.xml"))
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&parsed.stdout).trim(), "12 5 3 12", "{xml}");
    assert!(xml.contains(r#"name="tmpl:1.0""#) && xml.contains("syntax error"), "{xml}");
    assert!(xml.contains(r#"<skipped message="needs cyc-a, which cannot be built"/>"#), "{xml}");

    // publish: the good ones end in the registry, the rest as before, and the run still says it failed.
    let publish = tree.run(&["publish", ".", "--json", "--no-pull"]).expect_code(1);
    let published: Vec<(&str, &str)> =
        good.iter().map(|(name, _)| (*name, "published")).chain(broken).chain(blocked).collect();
    assert_eq!(final_states(&publish), states(&published), "{}", publish.stdout());
    let status = tree.run(&["status", ".", "--select", "app"]).success();
    assert!(status.stdout().contains("published: 200 from registry"), "{}", status.stdout());
}

#[ignore = "needs the real Docker environment: run scripts/test.sh"]
#[test]
fn graph_and_check_list_everything_they_can() {
    let env = test_env();
    let tree = messy(&env, &env.registry, "t-isolation-graph");
    let check = tree.run(&["check", "."]).expect_code(1);
    for needle in [
        "nameless/changelog:1: no changelog entry",
        "tmpl/Dockerfile.template:2: syntax error",
        "`1.0~rc1` is not a valid Docker tag",
        "dependency cycle: cyc-a -> cyc-b -> cyc-a",
        "lost/control:2: unknown dependency `nowhere`",
        "warning: ./operator/changelog:5: cannot parse non-conformant date",
    ] {
        assert!(check.stdout().contains(needle), "{needle}:\n{}", check.stdout());
    }
    let graph = tree.run(&["graph", ".", "--format", "json"]).expect_code(1);
    let json: Value = serde_json::from_str(&graph.stdout()).expect("JSON, even when incomplete");
    let names: Vec<&str> = json["order"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["base", "app", "fpm", "lost", "operator", "rc", "rc-child", "tmpl", "tmpl-child", "cyc-child"],
        "everything but the cycle, in build order"
    );
    assert!(
        graph.stderr().contains("left out of the graph: cyc-a (it is on a dependency cycle)"),
        "{}",
        graph.stderr()
    );
}
