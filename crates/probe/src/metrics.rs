//! Counters and the probe latency histogram, readable without locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use health::{FailureKind, ProbeOutcome};

/// Upper bounds of the latency histogram's buckets, in microseconds (Prometheus `le`
/// values 0.0001 s … 10 s; a last bucket holds the rest).
pub const LATENCY_BOUNDS_US: [u64; 17] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl LatencyHistogram {
    /// Records one observation.
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US.partition_point(|&b| b < us);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Per-bucket counts (not cumulative); the last entry is above the last bound.
    pub fn counts(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    /// The sum of all observations.
    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_us.load(Ordering::Relaxed))
    }
}

/// Estimates quantile `q` (0..=1) from per-bucket `counts` (as [`LatencyHistogram::counts`]
/// returns), interpolating linearly inside the bucket; `None` without observations.
pub fn quantile(counts: &[u64], q: f64) -> Option<Duration> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0);
    let mut seen = 0u64;
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        if (seen + c) as f64 >= rank {
            let lo = if i == 0 {
                0
            } else {
                LATENCY_BOUNDS_US.get(i - 1).copied().unwrap_or(0)
            };
            let hi = LATENCY_BOUNDS_US.get(i).copied().unwrap_or(lo);
            let frac = (rank - seen as f64) / c as f64;
            let us = lo as f64 + (hi.saturating_sub(lo)) as f64 * frac;
            return Some(Duration::from_micros(us as u64));
        }
        seen += c;
    }
    None
}

/// The prober's counters (shared with the metrics exporter).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Probes started.
    pub probes_started: AtomicU64,
    /// Probes that passed.
    pub probes_ok: AtomicU64,
    /// Failed probes by [`FailureKind`]: timeout, connect, response, program.
    pub failures: [AtomicU64; 4],
    /// Results that came too late (the checker had timed the attempt out).
    pub stale_results: AtomicU64,
    /// Tracked-file reads.
    pub file_reads: AtomicU64,
    /// Latency of finished probes (start of the probe to its verdict).
    pub latency: LatencyHistogram,
}

/// Index of a failure kind in [`Metrics::failures`].
pub fn failure_index(k: FailureKind) -> usize {
    match k {
        FailureKind::Timeout => 0,
        FailureKind::Connect => 1,
        FailureKind::Response => 2,
        FailureKind::Program => 3,
    }
}

/// Label values for [`Metrics::failures`], in order.
pub const FAILURE_LABELS: [&str; 4] = ["timeout", "connect", "response", "program"];

impl Metrics {
    /// Counts one finished probe.
    pub fn record(&self, outcome: ProbeOutcome, latency: Duration) {
        match outcome {
            ProbeOutcome::Failure(k) => {
                if let Some(c) = self.failures.get(failure_index(k)) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                self.probes_ok.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency.record(latency);
    }

    /// A plain copy of the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            probes_started: self.probes_started.load(Ordering::Relaxed),
            probes_ok: self.probes_ok.load(Ordering::Relaxed),
            failures: [0, 1, 2, 3].map(|i| {
                self.failures
                    .get(i)
                    .map_or(0, |c| c.load(Ordering::Relaxed))
            }),
            stale_results: self.stale_results.load(Ordering::Relaxed),
            file_reads: self.file_reads.load(Ordering::Relaxed),
            latency_counts: self.latency.counts(),
            latency_sum: self.latency.sum(),
        }
    }
}

/// A copy of [`Metrics`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Probes started.
    pub probes_started: u64,
    /// Probes that passed.
    pub probes_ok: u64,
    /// Failed probes, indexed as [`FAILURE_LABELS`].
    pub failures: [u64; 4],
    /// Late results.
    pub stale_results: u64,
    /// Tracked-file reads.
    pub file_reads: u64,
    /// Latency histogram counts per bucket of [`LATENCY_BOUNDS_US`] (plus overflow).
    pub latency_counts: Vec<u64>,
    /// Sum of latencies.
    pub latency_sum: Duration,
}

impl MetricsSnapshot {
    /// Estimated latency quantile.
    pub fn latency_quantile(&self, q: f64) -> Option<Duration> {
        quantile(&self.latency_counts, q)
    }

    /// Finished probes.
    pub fn probes_finished(&self) -> u64 {
        self.latency_counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let h = LatencyHistogram::default();
        for _ in 0..98 {
            h.record(Duration::from_micros(80)); // bucket 0 (≤100 µs)
        }
        h.record(Duration::from_micros(700)); // index 3 (500 µs < x ≤ 1 ms)
        h.record(Duration::from_secs(60)); // overflow
        let c = h.counts();
        assert_eq!(c[0], 98);
        assert_eq!(c[3], 1);
        assert_eq!(c[LATENCY_BOUNDS_US.len()], 1);
        assert_eq!(c.iter().sum::<u64>(), 100);
        assert_eq!(h.sum(), Duration::from_micros(98 * 80 + 700 + 60_000_000));
        let p50 = quantile(&c, 0.5).unwrap();
        assert!(p50 <= Duration::from_micros(100), "{p50:?}");
        let p99 = quantile(&c, 0.99).unwrap();
        assert!(
            p99 > Duration::from_micros(500) && p99 <= Duration::from_micros(1000),
            "{p99:?}"
        );
        assert_eq!(quantile(&[0; 18], 0.9), None);
        // Exactly on a bound falls into that bound's bucket.
        let h = LatencyHistogram::default();
        h.record(Duration::from_micros(100));
        assert_eq!(h.counts()[0], 1);
    }

    #[test]
    fn counters() {
        let m = Metrics::default();
        m.record(ProbeOutcome::Success, Duration::from_millis(1));
        m.record(ProbeOutcome::SuccessWithWeight(3), Duration::from_millis(1));
        m.record(
            ProbeOutcome::Failure(FailureKind::Connect),
            Duration::from_millis(1),
        );
        let s = m.snapshot();
        assert_eq!(s.probes_ok, 2);
        assert_eq!(s.failures, [0, 1, 0, 0]);
        assert_eq!(s.probes_finished(), 3);
    }
}
