//! The real trees in `../shared/corpora`: names, tags and labels as docker-pkg scans them, and a build order
//! that fixes docker-pkg's misordering.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::{Run, run_in, shared_dir};

/// (corpus, scan root, config file relative to the corpus).
const ROOTS: [(&str, &str, &str); 5] = [
    ("production-images", "images", "config.yaml"),
    ("production-images", "istio", "config-istio.yaml"),
    ("production-images", "cert-manager", "config-cert-manager.yaml"),
    ("production-images", "ml", "config-ml.yaml"),
    ("docker-pkg-fixtures", ".", "config.yaml"),
];

fn imgraph(shared: &Path, corpus: &str, root: &str, config: &str, args: &[&str]) -> Run {
    let corpus_dir = shared.join("corpora").join(corpus);
    let mut all: Vec<String> = vec!["-c".into(), corpus_dir.join(config).to_string_lossy().into_owned()];
    all.extend(args.iter().map(|a| a.replace("{root}", &corpus_dir.join(root).to_string_lossy())));
    run_in(&std::env::temp_dir(), &all, &[&corpus_dir])
}

fn graph_json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout()).expect("graph --format json prints JSON")
}

fn golden_scan(shared: &Path, corpus: &str, root: &str) -> Value {
    let path: PathBuf = shared.join("golden").join(corpus).join(root).join("scan.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read scan.json")).expect("scan.json is JSON")
}

#[test]
fn names_tags_labels_and_paths_match_docker_pkg() {
    let Some(shared) = shared_dir() else { return };
    let mut total = 0;
    for (corpus, root, config) in ROOTS {
        let graph =
            graph_json(&imgraph(&shared, corpus, root, config, &["graph", "{root}", "--format", "json"]).success());
        let ours: Vec<(String, String, String, String)> = graph["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["name"].to_string(), i["tag"].to_string(), i["label"].to_string(), i["path"].to_string()))
            .collect();
        let mut golden: Vec<(String, String, String, String)> = golden_scan(&shared, corpus, root)["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["name"].to_string(), i["tag"].to_string(), i["label"].to_string(), i["path"].to_string()))
            .collect();
        golden.sort();
        assert_eq!(ours, golden, "{corpus}/{root}");
        total += ours.len();
    }
    assert_eq!(total, 140);
}

fn position(order: &[Value], name: &str) -> usize {
    order.iter().position(|n| n == name).unwrap_or_else(|| panic!("{name} is not in the order"))
}

#[test]
fn jdk_images_are_ordered_after_the_jre_they_are_built_from() {
    let Some(shared) = shared_dir() else { return };
    let run = imgraph(&shared, "production-images", "images", "config.yaml", &["graph", "{root}", "--format", "json"]);
    let graph = graph_json(&run.success());
    let order = graph["order"].as_array().unwrap();
    assert_eq!(order.len(), 125);
    for version in ["11", "17"] {
        let (jre, jdk) = (format!("openjdk-{version}-jre"), format!("openjdk-{version}-jdk"));
        assert!(position(order, &jre) < position(order, &jdk), "{jre} must come before {jdk}");
        let jdk_entry = graph["images"].as_array().unwrap().iter().find(|i| i["name"] == jdk.as_str()).unwrap();
        assert!(jdk_entry["depends"].as_array().unwrap().contains(&Value::from(jre)));
    }
}

#[test]
fn check_passes_on_the_production_roots_and_flags_the_fixture_tag() {
    let Some(shared) = shared_dir() else { return };
    for (corpus, root, config) in &ROOTS[..4] {
        imgraph(&shared, corpus, root, config, &["check", "{root}"]).success();
    }
    let run = imgraph(&shared, "docker-pkg-fixtures", ".", "config.yaml", &["check", "{root}"]).expect_code(1);
    let stdout = run.stdout();
    let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stdout}");
    assert!(errors[0].contains("foobar-server/changelog:1:") && errors[0].contains("0.0.1~alpha1"), "{}", errors[0]);
}
