//! Consumer group lag families (`corestream_group_*`).

use std::fmt::Write as _;

use super::family;
use crate::ops::metrics::{escape_label, GroupLagStats};

pub(super) fn render_lags(out: &mut String, lags: &[GroupLagStats]) {
    family(
        out,
        "corestream_group_lag",
        "gauge",
        "Records between a group's committed offset and the high watermark.",
    );
    for l in lags {
        let _ = writeln!(
            out,
            "corestream_group_lag{{group=\"{}\",topic=\"{}\",partition=\"{}\"}} {}",
            escape_label(&l.group),
            escape_label(&l.topic),
            l.partition,
            l.lag
        );
    }
    family(
        out,
        "corestream_group_committed_offset",
        "gauge",
        "A group's committed offset.",
    );
    for l in lags {
        let _ = writeln!(
            out,
            "corestream_group_committed_offset{{group=\"{}\",topic=\"{}\",partition=\"{}\"}} {}",
            escape_label(&l.group),
            escape_label(&l.topic),
            l.partition,
            l.committed_offset
        );
    }
}
