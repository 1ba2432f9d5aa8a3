//! Decoding many messages on all cores: [`map_ordered`].
//!
//! A message's decode is dominated by its ECDSA key recoveries (tens of µs each), so a batch of
//! messages decodes in parallel almost linearly. Callers keep memory flat by handing in bounded
//! batches (the CLI import, archive import and history decoding each use a few thousand).

/// Below this many items a batch is decoded on the calling thread (spawning costs more).
const MIN_PARALLEL: usize = 256;

/// At most this many threads, whatever the machine has.
const MAX_THREADS: usize = 16;

/// The number of threads [`map_ordered`] uses for a large batch: the cores the process may use
/// (`available_parallelism`), at most 16.
#[must_use]
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(MAX_THREADS)
}

/// `items.iter().map(f).collect()`, computed on up to [`threads`] scoped threads over contiguous
/// chunks, in the order of `items`. A panic in `f` on a worker is re-raised on the caller.
pub fn map_ordered<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    for part in map_chunks(items, |chunk| chunk.iter().map(&f).collect::<Vec<R>>()) {
        out.extend(part);
    }
    out
}

/// `f` applied to each of up to [`threads`] contiguous chunks of `items`, one scoped thread per
/// chunk (one chunk on the calling thread when `items` is short); the results in the order of
/// the chunks. For work whose output is best built per chunk (e.g. one buffer of text lines).
/// A panic in `f` on a worker is re-raised on the caller.
pub fn map_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = threads();
    if threads <= 1 || items.len() < MIN_PARALLEL {
        return vec![f(items)];
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|part| scope.spawn(move || f(part))).collect();
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_ordered_keeps_the_order_of_large_and_small_batches() {
        for n in [0usize, 1, 255, 256, 1000, 4097] {
            let items: Vec<u64> = (0..n as u64).collect();
            let out = map_ordered(&items, |x| x * 3 + 1);
            assert_eq!(out, items.iter().map(|x| x * 3 + 1).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn map_chunks_covers_every_item_once_in_order() {
        for n in [0usize, 3, 256, 1001] {
            let items: Vec<usize> = (0..n).collect();
            let parts = map_chunks(&items, <[usize]>::to_vec);
            assert!(parts.len() <= threads().max(1), "{} parts", parts.len());
            assert_eq!(parts.concat(), items, "n = {n}");
        }
    }

    #[test]
    fn map_ordered_uses_more_than_one_thread_when_the_machine_has_them() {
        let items: Vec<u32> = (0..4096).collect();
        let ids = map_ordered(&items, |_| std::thread::current().id());
        let distinct: std::collections::BTreeSet<String> = ids.iter().map(|id| format!("{id:?}")).collect();
        assert_eq!(distinct.len() > 1, threads() > 1, "{} threads, {} distinct", threads(), distinct.len());
    }
}
