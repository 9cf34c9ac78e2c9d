//! Throughput of one operation on N threads, and the median of several rounds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::Result;

/// What one thread owns while it measures: its index (which session and which per-thread key it
/// uses), a scratch output buffer reused by every call, and how many operations it has done.
pub struct Worker {
    pub index: usize,
    pub buf: Vec<u8>,
    pub done: u64,
}

impl Worker {
    /// The scratch buffer, grown to at least `len` bytes once (never per call).
    pub fn out(&mut self, len: usize) -> &mut [u8] {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        &mut self.buf[..len]
    }
}

/// One measured operation.
pub type Op<'a> = Box<dyn Fn(&mut Worker) -> Result<()> + Sync + 'a>;

/// How long each figure is measured: for `time`, or for exactly `ops` operations (split over
/// the threads), which makes instruction counts under `valgrind --tool=callgrind` repeatable.
#[derive(Clone, Copy)]
pub struct Budget {
    pub time: Duration,
    pub ops: Option<u64>,
}

/// Runs `op` on `threads` threads, each after one untimed warm-up call (which loads and unseals
/// the key, fills caches and sizes the buffer); returns operations per second.
pub fn throughput(threads: usize, budget: Budget, op: &Op<'_>) -> Result<f64> {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads + 1);
    let per_thread = budget.ops.map(|n| n.div_ceil(threads as u64).max(1));
    let (began, counts) = std::thread::scope(|scope| -> Result<(Instant, Vec<u64>)> {
        let workers: Vec<_> = (0..threads)
            .map(|index| {
                let (stop, start) = (&stop, &start);
                scope.spawn(move || -> std::result::Result<u64, String> {
                    let mut worker = Worker {
                        index,
                        buf: Vec::new(),
                        done: 0,
                    };
                    let warm = op(&mut worker).map_err(|e| e.to_string());
                    start.wait();
                    warm?;
                    worker.done = 0;
                    while !stop.load(Ordering::Relaxed)
                        && per_thread.is_none_or(|n| worker.done < n)
                    {
                        op(&mut worker).map_err(|e| e.to_string())?;
                        worker.done += 1;
                    }
                    Ok(worker.done)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        if budget.ops.is_none() {
            std::thread::sleep(budget.time);
            stop.store(true, Ordering::Relaxed);
        }
        let mut counts = Vec::new();
        let mut failure = None;
        for worker in workers {
            match worker.join() {
                Ok(Ok(n)) => counts.push(n),
                Ok(Err(e)) => failure = Some(e),
                Err(_) => failure = Some("a worker panicked".to_owned()),
            }
            // The others stop at once when one fails.
            stop.store(true, Ordering::Relaxed);
        }
        match failure {
            Some(e) => Err(e.into()),
            None => Ok((began, counts)),
        }
    })?;
    Ok(counts.iter().sum::<u64>() as f64 / began.elapsed().as_secs_f64())
}

/// The median of the rounds' figures (the mean of the middle two for an even count).
pub fn median(figures: &[f64]) -> Option<f64> {
    let mut sorted = figures.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}
