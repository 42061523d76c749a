//! Bounded fork-join: independent bases and files are built on worker
//! threads (at most one per CPU across all nesting levels); results are
//! combined in input order, so output and errors stay deterministic.

use std::sync::atomic::{AtomicUsize, Ordering};

static BUSY: AtomicUsize = AtomicUsize::new(0);

fn limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
    })
}

fn try_acquire() -> bool {
    let mut cur = BUSY.load(Ordering::Relaxed);
    loop {
        if cur >= limit() {
            return false;
        }
        match BUSY.compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => cur = now,
        }
    }
}

/// `items.iter().map(f).collect()`, with spare CPUs working ahead.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() < 2 || limit() == 0 {
        return items.iter().map(&f).collect();
    }
    std::thread::scope(|s| {
        let f = &f;
        let mut pending = Vec::with_capacity(items.len());
        for it in items {
            if try_acquire() {
                pending.push(Err(s.spawn(move || {
                    let r = f(it);
                    BUSY.fetch_sub(1, Ordering::AcqRel);
                    r
                })));
            } else {
                pending.push(Ok(f(it)));
            }
        }
        pending
            .into_iter()
            .map(|p| match p {
                Ok(r) => r,
                // A worker that panicked re-raises the panic here.
                Err(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            })
            .collect()
    })
}
