//! The DAG scheduler: runs one unit of work per image, up to `jobs` at once, each as soon as all its parents
//! succeeded. A failure skips the failed image's descendants and lets independent branches go on;
//! `--fail-fast` and cancellation stop launching new work. A unit of work that panics fails its image only.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How one image's work ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T, N> {
    Done(T),
    Failed(String),
    /// Not attempted: `because` (an ancestor) failed.
    Skipped {
        because: N,
    },
    /// Not finished: cancelled while running, or never started after a cancellation or `--fail-fast`.
    Cancelled,
}

/// The work of one image.
pub type Work<T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send>>;

/// Runs `work` for every node of `order` (a topological order of the nodes to run), where `parents(n)` lists
/// the nodes `n` waits for (parents outside `order` are taken as satisfied).
pub async fn run<T: Send + 'static, N: Copy + Ord + Hash + Send + 'static>(
    order: &[N],
    parents: impl Fn(N) -> Vec<N>,
    name: impl Fn(N) -> String,
    jobs: usize,
    fail_fast: bool,
    cancel: &CancellationToken,
    work: impl Fn(N) -> Work<T>,
) -> BTreeMap<N, Outcome<T, N>> {
    let position: HashMap<N, usize> = order.iter().enumerate().map(|(p, &n)| (n, p)).collect();
    let mut children: HashMap<N, Vec<N>> = HashMap::new();
    let mut waiting: HashMap<N, usize> = HashMap::new();
    for &node in order {
        let inside: Vec<N> = parents(node).into_iter().filter(|p| position.contains_key(p)).collect();
        waiting.insert(node, inside.len());
        for parent in inside {
            children.entry(parent).or_default().push(node);
        }
    }
    // Ready nodes start in build order, so runs are reproducible.
    let mut ready: BinaryHeap<Reverse<usize>> =
        order.iter().enumerate().filter(|(_, n)| waiting[n] == 0).map(|(p, _)| Reverse(p)).collect();
    let mut outcomes: BTreeMap<N, Outcome<T, N>> = BTreeMap::new();
    let mut running = JoinSet::new();
    // Which node each task runs, so that a task that panicked can still be told apart.
    let mut tasks: HashMap<tokio::task::Id, N> = HashMap::new();
    let mut stopped = false;
    loop {
        while !stopped && !cancel.is_cancelled() && running.len() < jobs.max(1) {
            let Some(Reverse(p)) = ready.pop() else { break };
            let node = order[p];
            tracing::info!(image = name(node), running = running.len() + 1, jobs, "started");
            let (future, token) = (work(node), cancel.clone());
            let handle = running.spawn(async move { token.run_until_cancelled(future).await });
            tasks.insert(handle.id(), node);
        }
        let joined = tokio::select! {
            joined = running.join_next_with_id() => joined,
            () = cancel.cancelled(), if !stopped => { stopped = true; continue; }
        };
        let Some(joined) = joined else { break };
        let (node, result) = match joined {
            Ok((task, result)) => (tasks.remove(&task), result),
            Err(e) => {
                let node = tasks.remove(&e.id());
                let why = if e.is_panic() {
                    let panic = crate::tree::panic_message(&*e.into_panic());
                    format!("internal error ({panic}); please report it")
                } else {
                    "the task was stopped".to_owned()
                };
                (node, Some(Err(why)))
            }
        };
        let Some(node) = node else { continue };
        match result {
            Some(Ok(value)) => {
                outcomes.insert(node, Outcome::Done(value));
                for &child in children.get(&node).into_iter().flatten() {
                    let count = waiting.entry(child).or_default();
                    *count = count.saturating_sub(1);
                    if *count == 0 && !outcomes.contains_key(&child) {
                        tracing::debug!(image = name(child), "ready: every image it needs is done");
                        ready.push(Reverse(position[&child]));
                    }
                }
            }
            Some(Err(message)) => {
                tracing::info!(image = name(node), "failed; what depends on it is skipped");
                outcomes.insert(node, Outcome::Failed(message));
                for skipped in skip_descendants(node, &children, &mut outcomes) {
                    tracing::info!(image = name(skipped), because = name(node), "skipped: an image it needs failed");
                }
                stopped |= fail_fast;
            }
            None => {
                outcomes.insert(node, Outcome::Cancelled);
            }
        }
    }
    for &node in order {
        outcomes.entry(node).or_insert(Outcome::Cancelled);
    }
    outcomes
}

/// Marks every descendant of `failed` not yet done as skipped; returns them.
fn skip_descendants<T, N: Copy + Ord + Hash>(
    failed: N,
    children: &HashMap<N, Vec<N>>,
    outcomes: &mut BTreeMap<N, Outcome<T, N>>,
) -> Vec<N> {
    let mut skipped = Vec::new();
    let mut stack: Vec<N> = children.get(&failed).cloned().unwrap_or_default();
    while let Some(node) = stack.pop() {
        if let std::collections::btree_map::Entry::Vacant(entry) = outcomes.entry(node) {
            entry.insert(Outcome::Skipped { because: failed });
            skipped.push(node);
            stack.extend(children.get(&node).into_iter().flatten().copied());
        }
    }
    skipped
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// 0 <- {1, 2} <- 3; 4 independent; 5 <- 2.
    fn parents(n: usize) -> Vec<usize> {
        match n {
            1 | 2 => vec![0],
            3 => vec![1, 2],
            5 => vec![2],
            _ => vec![],
        }
    }

    const ORDER: [usize; 6] = [0, 1, 2, 4, 3, 5];

    #[tokio::test]
    async fn runs_parents_first_and_in_parallel() {
        let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (active, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let outcomes = run(
            &ORDER,
            parents,
            |n| n.to_string(),
            2,
            false,
            &CancellationToken::new(),
            |n| {
                let (finished, active, peak) = (finished.clone(), active.clone(), peak.clone());
                Box::pin(async move {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    active.fetch_sub(1, Ordering::SeqCst);
                    finished.lock().unwrap().push(n);
                    Ok(n)
                })
            },
        )
        .await;
        assert!(outcomes.values().all(|o| matches!(o, Outcome::Done(_))));
        let finished = finished.lock().unwrap().clone();
        for n in ORDER {
            for p in parents(n) {
                let at = |x| finished.iter().position(|&f| f == x).unwrap();
                assert!(at(p) < at(n), "{p} before {n} in {finished:?}");
            }
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2, "two at once");
    }

    #[tokio::test]
    async fn a_failure_skips_descendants_only() {
        let outcomes = run(
            &ORDER,
            parents,
            |n| n.to_string(),
            4,
            false,
            &CancellationToken::new(),
            |n| Box::pin(async move { if n == 2 { Err("boom".to_owned()) } else { Ok(()) } }),
        )
        .await;
        assert_eq!(outcomes[&2], Outcome::Failed("boom".into()));
        assert_eq!(outcomes[&3], Outcome::Skipped { because: 2 });
        assert_eq!(outcomes[&5], Outcome::Skipped { because: 2 });
        for n in [0, 1, 4] {
            assert_eq!(outcomes[&n], Outcome::Done(()));
        }
    }

    #[tokio::test]
    async fn fail_fast_stops_launching() {
        let outcomes = run(
            &ORDER,
            parents,
            |n| n.to_string(),
            1,
            true,
            &CancellationToken::new(),
            |n| Box::pin(async move { if n == 0 { Err("boom".to_owned()) } else { Ok(()) } }),
        )
        .await;
        assert_eq!(outcomes[&0], Outcome::Failed("boom".into()));
        assert_eq!(outcomes[&4], Outcome::Cancelled, "independent work is not started after --fail-fast");
        assert_eq!(outcomes[&3], Outcome::Skipped { because: 0 });
    }

    #[tokio::test]
    async fn a_panic_fails_its_image_only() {
        let outcomes = run(
            &ORDER,
            parents,
            |n| n.to_string(),
            2,
            false,
            &CancellationToken::new(),
            |n| Box::pin(async move { if n == 2 { panic!("bug") } else { Ok(()) } }),
        )
        .await;
        assert_eq!(outcomes[&2], Outcome::Failed("internal error (bug); please report it".into()));
        assert_eq!(outcomes[&3], Outcome::Skipped { because: 2 });
        assert_eq!(outcomes[&4], Outcome::Done(()));
    }

    #[tokio::test]
    async fn cancellation_stops_running_work() {
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        let outcomes = run(
            &ORDER,
            parents,
            |n| n.to_string(),
            2,
            false,
            &cancel,
            move |n| {
                let trigger = trigger.clone();
                Box::pin(async move {
                    if n == 0 {
                        trigger.cancel();
                    }
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(())
                })
            },
        )
        .await;
        assert!(outcomes.values().all(|o| *o == Outcome::Cancelled), "{outcomes:?}");
    }
}
