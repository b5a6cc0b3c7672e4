//! Client quota throttle families (`corestream_quota_*`).

use std::fmt::Write as _;

use super::family;
use crate::ops::metrics::ShardReport;

/// Client quota throttles per shard and quota type (`produce`, `fetch`,
/// `request`): how many answers were throttled and for how long in all.
pub(super) fn render_quota_throttles(out: &mut String, reports: &[ShardReport]) {
    use crate::quota::QuotaType;
    type Read = fn(&ShardReport, usize) -> String;
    let families: [(&str, &str, Read); 2] = [
        (
            "corestream_quota_throttles_total",
            "Answers throttled for a client quota (KIP-219: throttle_time_ms set, connection muted).",
            |r, i| r.metrics.quota_throttles[i].to_string(),
        ),
        (
            "corestream_quota_throttle_seconds_total",
            "Throttle time answered for client quotas.",
            |r, i| format!("{:.3}", r.metrics.quota_throttle_ms[i] as f64 / 1000.0),
        ),
    ];
    for (name, help, get) in families {
        family(out, name, "counter", help);
        for r in reports {
            for (i, kind) in QuotaType::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{}\",quota_type=\"{}\"}} {}",
                    r.shard,
                    kind.label(),
                    get(r, i)
                );
            }
        }
    }
}
