//! Content fingerprints: what an image is made of, as the tree defines it, in one hash: its rendered
//! Dockerfile and build context (after `.dockerignore`, links followed), the build arguments, and the
//! fingerprints of the tree images it is built on, recursively. It depends on nothing but the tree and the
//! config, so the fingerprint a build records (the `dev.imgraph.fingerprint` label) can be computed again later
//! and compared: `outdated` finds published images whose tree content changed without a version bump.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::analysis::Analysis;
use crate::config::PROXY_VARIABLES;
use crate::engine;
use crate::tree::ImageId;

/// The label carrying an image's fingerprint.
pub const LABEL: &str = "dev.imgraph.fingerprint";

/// The build arguments every build gets: docker-pkg's four proxy variables when `http_proxy` is set.
pub fn build_args(proxy: Option<&str>) -> BTreeMap<String, String> {
    proxy.map(|proxy| PROXY_VARIABLES.map(|k| (k.to_owned(), proxy.to_owned())).into()).unwrap_or_default()
}

/// The fingerprints of a tree's images, each computed once (computing one reads its whole build context).
#[derive(Debug, Default)]
pub struct Fingerprints {
    known: Mutex<HashMap<ImageId, String>>,
}

impl Fingerprints {
    /// The fingerprint of `id`, computing those of the images it is built on first. Blocking: it reads files.
    pub fn of(&self, analysis: &Analysis, id: ImageId) -> Result<String, String> {
        if let Some(known) = crate::lock(&self.known).get(&id) {
            return Ok(known.clone());
        }
        let tree = &analysis.tree;
        let image = &tree[id];
        let rendered = analysis.rendered[id]
            .as_ref()
            .ok_or_else(|| format!("{}: the template did not render (see `imgraph check`)", image.name))?;
        let context = engine::context_digest(&tree.canonical_root, &image.dir, &rendered.dockerfile)
            .map_err(|e| e.to_string())?;
        let mut hash = Sha256::new();
        hash.update(context.as_bytes());
        for (key, value) in build_args(tree.config.http_proxy.as_deref()) {
            hash.update(format!("\0arg {key}={value}").as_bytes());
        }
        // A cycle never reaches here: images on one cannot be built, and neither can what depends on them.
        for parent in analysis.graph.parents(id) {
            if analysis.graph.is_on_cycle(parent) {
                return Err(format!("{} is on a dependency cycle", tree[parent].name));
            }
            hash.update(format!("\0parent {}", self.of(analysis, parent)?).as_bytes());
        }
        let fingerprint = format!("sha256:{}", hex::encode(hash.finalize()));
        crate::lock(&self.known).insert(id, fingerprint.clone());
        Ok(fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_become_the_four_build_args() {
        assert!(build_args(None).is_empty());
        let args = build_args(Some("http://proxy:8080"));
        assert_eq!(args.len(), 4);
        assert!(args.values().all(|v| v == "http://proxy:8080"));
    }
}
