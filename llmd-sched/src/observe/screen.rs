//! What plugins did that a decision does not show: strict selectors that
//! matched nothing, a rollout screener's revision shares, how burst
//! producers placed the requests of a batch, and what request hooks counted
//! (session bindings dropped at their bound).

use std::sync::Arc;

use super::labels::Labels;
use super::metrics::Metrics;
use crate::framework::ScreenReport;

impl Metrics {
    /// Counts `n` requests of a `pick_batch` window at burst producer
    /// `plugin` with `outcome` (`colocated`, `no_affinity`, `batch_full`,
    /// and `assigned_absent` among the colocated).
    pub fn record_burst(&self, plugin: &str, outcome: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        let labels: Labels = vec![
            ("plugin", Arc::from(plugin)),
            ("outcome", Arc::from(outcome)),
        ];
        self.fam.burst_requests.get_or_create(&labels).inc_by(n);
    }

    /// Counts `n` events `event` of plugin instance `plugin`
    /// (`llmd_plugin_events_total`).
    pub fn record_plugin_event(&self, plugin: &str, event: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        let labels: Labels = vec![("plugin", Arc::from(plugin)), ("event", Arc::from(event))];
        self.fam.plugin_events.get_or_create(&labels).inc_by(n);
    }

    /// Records one pick's screener reports.
    pub fn record_screens(&self, reports: &[ScreenReport]) {
        for r in reports {
            let plugin: Arc<str> = Arc::from(r.plugin.as_str());
            if let Some(selector) = &r.strict_no_match {
                let labels: Labels = vec![
                    ("plugin", plugin.clone()),
                    ("selector", Arc::from(selector.as_str())),
                ];
                self.fam.screen_no_match.get_or_create(&labels).inc();
            }
            let Some(shares) = &r.shares else {
                continue;
            };
            let share_labels = |rev: &str| -> Labels {
                vec![("plugin", plugin.clone()), ("revision", Arc::from(rev))]
            };
            for (rev, share) in shares {
                self.fam
                    .revision_share
                    .get_or_create(&share_labels(rev))
                    .set(*share);
            }
            // Drop the series of revisions this screener no longer observes.
            let mut known = self.revisions.lock();
            let seen = known.entry(r.plugin.clone()).or_default();
            for gone in seen.iter().filter(|k| !shares.iter().any(|(r, _)| r == *k)) {
                self.fam.revision_share.remove(&share_labels(gone));
            }
            *seen = shares.iter().map(|(r, _)| r.clone()).collect();
        }
    }
}
