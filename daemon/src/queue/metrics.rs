//! Counters and histograms behind `GET /metrics` (Prometheus text format 0.0.4).
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use hermetic_contract::wire::{JobState, JobVerdict};

const DURATION_BOUNDS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];
const SETUP_BOUNDS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    submitted: u64,
    rejected_busy: u64,
    /// Finished jobs by (state, verdict).
    finished: BTreeMap<(&'static str, &'static str), u64>,
    duration: Histogram,
    queue_wait: Histogram,
    setup: Histogram,
}

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        for (count, bound) in self.counts.iter_mut().zip(bounds) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str, bounds: &[f64]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (index, bound) in bounds.iter().enumerate() {
            let count = self.counts.get(index).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// The gauges read from the scheduler when rendering.
pub struct Gauges {
    pub queued: usize,
    pub running: usize,
    pub max_concurrent: usize,
    pub queue_limit: usize,
    /// The newest recorded drill of each kind that has one (the drill history).
    pub drills: Vec<crate::store::LastDrill>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn submitted(&self) {
        self.lock().submitted += 1;
    }

    pub fn rejected_busy(&self) {
        self.lock().rejected_busy += 1;
    }

    pub fn started(&self, queue_wait: Duration) {
        self.lock()
            .queue_wait
            .observe(DURATION_BOUNDS, queue_wait.as_secs_f64());
    }

    pub fn finished(
        &self,
        state: JobState,
        verdict: Option<JobVerdict>,
        duration: Option<Duration>,
        setup: Option<Duration>,
    ) {
        let mut inner = self.lock();
        *inner
            .finished
            .entry((state.as_str(), verdict.map_or("none", JobVerdict::as_str)))
            .or_default() += 1;
        if let Some(duration) = duration {
            inner
                .duration
                .observe(DURATION_BOUNDS, duration.as_secs_f64());
        }
        if let Some(setup) = setup {
            inner.setup.observe(SETUP_BOUNDS, setup.as_secs_f64());
        }
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let inner = self.lock();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP hermeticd_jobs Jobs by state (queued and running now; finished since start) and verdict.\n# TYPE hermeticd_jobs gauge"
        );
        let _ = writeln!(
            out,
            "hermeticd_jobs{{state=\"queued\",verdict=\"none\"}} {}",
            gauges.queued
        );
        let _ = writeln!(
            out,
            "hermeticd_jobs{{state=\"running\",verdict=\"none\"}} {}",
            gauges.running
        );
        // Both labels are fixed names: nothing in them needs escaping.
        for ((state, verdict), count) in &inner.finished {
            let _ = writeln!(
                out,
                "hermeticd_jobs{{state=\"{state}\",verdict=\"{verdict}\"}} {count}"
            );
        }
        let mut gauge = |name: &str, help: &str, value: u64, kind: &str| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        gauge(
            "hermeticd_queue_depth",
            "Jobs waiting for a slot.",
            gauges.queued as u64,
            "gauge",
        );
        gauge(
            "hermeticd_queue_limit",
            "Jobs that may wait before submissions are refused as busy.",
            gauges.queue_limit as u64,
            "gauge",
        );
        gauge(
            "hermeticd_max_concurrent_jobs",
            "Jobs that may run at once.",
            gauges.max_concurrent as u64,
            "gauge",
        );
        gauge(
            "hermeticd_jobs_submitted_total",
            "Jobs accepted since start.",
            inner.submitted,
            "counter",
        );
        gauge(
            "hermeticd_jobs_rejected_busy_total",
            "Submissions refused because the queue was full.",
            inner.rejected_busy,
            "counter",
        );
        gauge(
            "hermeticd_cache_quarantined_total",
            "Cache entries refused on restore and moved to quarantine since start.",
            hermetic::cache::quarantine::quarantined_total(),
            "counter",
        );
        gauge(
            "hermeticd_cache_conflicts_total",
            "Pushes to the remote cache that found another entry for the same key since start.",
            hermetic::cache::remote::conflicts_total(),
            "counter",
        );
        // Alerting reads these two: a drill older than the schedule allows, or failed.
        let mut per_drill_kind =
            |name: &str, help: &str, value: &dyn Fn(&crate::store::LastDrill) -> i64| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                for drill in &gauges.drills {
                    let _ = writeln!(
                        out,
                        "{name}{{kind=\"{}\"}} {}",
                        drill.kind.as_str(),
                        value(drill)
                    );
                }
            };
        per_drill_kind(
            "hermeticd_drill_last_finished_timestamp_seconds",
            "When the newest recorded drill of each kind finished.",
            &|drill| drill.finished_s,
        );
        per_drill_kind(
            "hermeticd_drill_last_passed",
            "Whether the newest recorded drill of each kind passed (1) or not (0).",
            &|drill| i64::from(drill.passed),
        );
        inner.duration.render(
            &mut out,
            "hermeticd_job_duration_seconds",
            "Wall time of finished jobs, from start to end.",
            DURATION_BOUNDS,
        );
        inner.queue_wait.render(
            &mut out,
            "hermeticd_job_queue_wait_seconds",
            "Time jobs waited in the queue.",
            DURATION_BOUNDS,
        );
        inner.setup.render(
            &mut out,
            "hermeticd_sandbox_setup_seconds",
            "Time from launch until the build's command was exec'd.",
            SETUP_BOUNDS,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_counters_are_exported_as_counters() {
        let rendered = Metrics::default().render(&Gauges {
            queued: 0,
            running: 0,
            max_concurrent: 1,
            queue_limit: 1,
            drills: vec![],
        });
        for counter in [
            "hermeticd_cache_quarantined_total",
            "hermeticd_cache_conflicts_total",
        ] {
            assert!(
                rendered.contains(&format!("# TYPE {counter} counter\n{counter} ")),
                "{rendered}"
            );
        }
    }

    #[test]
    fn the_last_drill_of_each_kind_is_exported_with_its_time_and_result() {
        use hermetic_contract::report::DrillKind;
        let rendered = Metrics::default().render(&Gauges {
            queued: 0,
            running: 0,
            max_concurrent: 1,
            queue_limit: 1,
            drills: vec![
                crate::store::LastDrill {
                    kind: DrillKind::Determinism,
                    finished_s: 1_700_000_000,
                    passed: true,
                },
                crate::store::LastDrill {
                    kind: DrillKind::Poison,
                    finished_s: 1_700_000_500,
                    passed: false,
                },
            ],
        });
        for line in [
            "hermeticd_drill_last_finished_timestamp_seconds{kind=\"determinism\"} 1700000000\n",
            "hermeticd_drill_last_finished_timestamp_seconds{kind=\"poison\"} 1700000500\n",
            "hermeticd_drill_last_passed{kind=\"determinism\"} 1\n",
            "hermeticd_drill_last_passed{kind=\"poison\"} 0\n",
        ] {
            assert!(rendered.contains(line), "{line} in {rendered}");
        }
    }
}
