//! Template rendering conformance: every `Dockerfile.template` of the real trees renders byte for byte as
//! docker-pkg 4.0.4 rendered it (`../shared/golden/<corpus>/<root>/rendered/<name>.Dockerfile`).

use std::path::Path;

use imgraph::config::Config;
use imgraph::definition::template::TemplateEngine;
use serde_json::Value;

use crate::harness::shared_dir;

/// (corpus, scan root) pairs with golden renderings.
const ROOTS: [(&str, &str); 5] = [
    ("production-images", "images"),
    ("production-images", "istio"),
    ("production-images", "cert-manager"),
    ("production-images", "ml"),
    ("docker-pkg-fixtures", "."),
];

/// One image whose rendering differs from docker-pkg's.
struct Mismatch {
    image: String,
    detail: String,
}

fn string_field<'a>(record: &'a Value, key: &str) -> &'a str {
    record[key].as_str().unwrap_or_else(|| panic!("scan.json record without a string `{key}`: {record}"))
}

/// Renders every image of one root and returns how many were checked, and the mismatches.
fn check_root(shared: &Path, corpus: &str, root: &str) -> (usize, Vec<Mismatch>) {
    let golden_dir = shared.join("golden").join(corpus).join(root);
    let scan_path = golden_dir.join("scan.json");
    let scan_text = std::fs::read_to_string(&scan_path).unwrap_or_else(|e| panic!("{}: {e}", scan_path.display()));
    let scan: Value = serde_json::from_str(&scan_text).unwrap_or_else(|e| panic!("{}: {e}", scan_path.display()));
    let corpus_dir = shared.join("corpora").join(corpus);
    let config_path = corpus_dir.join(string_field(&scan, "root_config"));
    let config = Config::load(Some(&config_path), None, None).unwrap_or_else(|e| panic!("{e}"));
    let records = scan["images"].as_array().unwrap_or_else(|| panic!("{}: no `images` array", scan_path.display()));

    // As docker-pkg: the tree's labels, then base_images.
    let known_images =
        records.iter().map(|r| string_field(r, "label").to_owned()).chain(config.base_images.iter().cloned()).collect();
    let tree_root = corpus_dir.join(root).canonicalize().unwrap_or_else(|e| panic!("{root}: {e}"));
    let engine = TemplateEngine::new(&config, known_images, &tree_root);

    let mut mismatches = Vec::new();
    for record in records {
        let name = string_field(record, "name");
        let image = format!("{corpus}/{root}/{}", string_field(record, "path"));
        let golden_path = golden_dir.join("rendered").join(format!("{name}.Dockerfile"));
        let golden = std::fs::read_to_string(&golden_path).unwrap_or_else(|e| panic!("{}: {e}", golden_path.display()));
        let detail = match engine.render(&corpus_dir.join(root).join(string_field(record, "path"))) {
            Ok(rendered) if rendered == golden => continue,
            Ok(rendered) => first_difference(&golden, &rendered),
            Err(err) => format!("render failed: {err} (line {:?})", err.line),
        };
        mismatches.push(Mismatch { image, detail });
    }
    (records.len(), mismatches)
}

/// A short hint: the first differing line of the two renderings.
fn first_difference(golden: &str, rendered: &str) -> String {
    let (mut golden_lines, mut rendered_lines) = (golden.split('\n'), rendered.split('\n'));
    let mut number = 1;
    loop {
        match (golden_lines.next(), rendered_lines.next()) {
            (Some(g), Some(r)) if g == r => number += 1,
            (g, r) => return format!("line {number}: expected {g:?}, got {r:?}"),
        }
    }
}

#[test]
fn rendered_dockerfiles_match_docker_pkg() {
    let Some(shared) = shared_dir() else { return };
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for (corpus, root) in ROOTS {
        let (count, root_mismatches) = check_root(&shared, corpus, root);
        checked += count;
        mismatches.extend(root_mismatches);
    }
    assert_eq!(checked, 140, "the corpora should hold 140 images");
    if let Some(first) = mismatches.first() {
        let list: Vec<&str> = mismatches.iter().map(|m| m.image.as_str()).collect();
        panic!(
            "{} of {checked} renderings differ from docker-pkg's:\n  {}\nfirst difference ({}): {}",
            mismatches.len(),
            list.join("\n  "),
            first.image,
            first.detail
        );
    }
}
