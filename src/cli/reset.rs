//! `corestream groups reset-offsets`: move an Empty group's committed
//! offsets on one topic (kafka-consumer-groups --reset-offsets).
//!
//! Dry run by default: the plan (current and new offset per partition) is
//! printed and nothing is committed unless `--execute` is given. Every
//! target is clamped to the partition's [log start, log end], as Kafka's
//! tool does. `--to-datetime` asks each leader (ListOffsets by timestamp)
//! for the first offset whose timestamp is at or after the time; a
//! partition with no such record goes to its log end (nothing to re-read).

use std::collections::BTreeMap;

use clap::Args;
use serde_json::json;

use super::client::{check, ClientError, Cluster};
use super::groups::{commit_offsets, describe_one, group_lag};
use super::output::Output;
use super::topics::{list_offsets, OFFSET_EARLIEST, OFFSET_LATEST};

/// Kafka's NON_EMPTY_GROUP: a group with members cannot be reset.
const NON_EMPTY_GROUP: i16 = 68;

/// Arguments of `groups reset-offsets`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(
    ["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"]
)))]
pub struct ResetArgs {
    /// Group id.
    pub group: String,
    /// Topic whose partitions are reset (every partition of it).
    #[arg(long)]
    pub topic: String,
    /// To each partition's log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To each partition's log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset (clamped to [log start, log end]).
    #[arg(long, value_name = "N")]
    pub to_offset: Option<i64>,
    /// To the first record at or after this time, ISO-8601
    /// (2026-11-22T10:00:00Z, 2026-11-22T11:00:00.5+01:00, 2026-11-22;
    /// no zone means UTC).
    #[arg(long, value_name = "TIME")]
    pub to_datetime: Option<String>,
    /// Current committed offset plus N (N may be negative), clamped.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets; without it only print them.
    #[arg(long)]
    pub execute: bool,
}

/// The new offset of one partition: `start`/`end` are its log start and
/// end offsets, `current` the committed offset (-1: none), `at_time` what
/// ListOffsets answered for `--to-datetime` (-1: no record that late).
pub fn reset_target(args: &ResetArgs, start: i64, end: i64, current: i64, at_time: i64) -> i64 {
    let wanted = if args.to_earliest {
        start
    } else if args.to_latest {
        end
    } else if let Some(n) = args.to_offset {
        n
    } else if args.to_datetime.is_some() {
        if at_time < 0 {
            end
        } else {
            at_time
        }
    } else {
        let base = if current < 0 { start } else { current };
        base.saturating_add(args.shift_by.unwrap_or(0))
    };
    wanted.clamp(start, end.max(start))
}

/// Milliseconds since the Unix epoch of an ISO-8601 date or date-time:
/// `YYYY-MM-DD`, then optionally `T` (or a space) `HH:MM[:SS[.fraction]]`,
/// then optionally `Z` or `±HH:MM` / `±HHMM`. No zone means UTC.
pub fn parse_datetime_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not an ISO-8601 time like 2026-11-22T10:00:00Z");
    let num = |s: &str| -> Result<i64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (date, rest) = text.split_at(text.len().min(10));
    let parts: Vec<&str> = date.split('-').collect();
    let [y, mo, d] = parts[..] else {
        return Err(bad());
    };
    let (year, month, day) = (num(y)?, num(mo)?, num(d)?);
    if y.len() != 4
        || !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
    {
        return Err(bad());
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    let rest = match rest.strip_prefix(['T', ' ']) {
        Some(time) => time,
        None if rest.is_empty() => return Ok(ms),
        None => return Err(bad()),
    };
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let fields: Vec<&str> = hms.split(':').collect();
    let (h, m, s) = match fields[..] {
        [h, m] => (num(h)?, num(m)?, 0),
        [h, m, s] => (num(h)?, num(m)?, num(s)?),
        _ => return Err(bad()),
    };
    if h > 23 || m > 59 || s > 60 || fields.iter().any(|f| f.len() != 2) {
        return Err(bad());
    }
    ms += (h * 3600 + m * 60 + s) * 1000;
    if !fraction.is_empty() {
        let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
        num(fraction)?;
        ms += num(&digits)?;
    }
    Ok(ms - zone_offset_ms(zone).ok_or_else(bad)?)
}

/// `Z`, `+HH:MM`, `-HHMM`, `+HH` or nothing (UTC), as ms east of UTC.
fn zone_offset_ms(zone: &str) -> Option<i64> {
    if zone.is_empty() || zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    (h <= 23 && m <= 59).then_some(sign * (h * 60 + m) * 60_000)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Runs `groups reset-offsets`.
pub fn run(cluster: &mut Cluster, out: &Output, args: &ResetArgs) -> Result<(), ClientError> {
    let group = args.group.as_str();
    let state = describe_one(cluster, group)?.group_state.to_string();
    if args.execute && !matches!(state.as_str(), "Empty" | "Dead" | "") {
        return check(NON_EMPTY_GROUP, || {
            format!("group {group:?} is {state}, not Empty: stop its consumers before resetting offsets")
        });
    }
    let at_time = match &args.to_datetime {
        Some(text) => Some(parse_datetime_ms(text).map_err(ClientError::Usage)?),
        None => None,
    };
    let leaders = cluster.leaders(&args.topic)?;
    let starts = list_offsets(cluster, &args.topic, &leaders, OFFSET_EARLIEST)?;
    let ends = list_offsets(cluster, &args.topic, &leaders, OFFSET_LATEST)?;
    let by_time = match at_time {
        Some(ms) => list_offsets(cluster, &args.topic, &leaders, ms)?,
        None => BTreeMap::new(),
    };
    let current: BTreeMap<i32, i64> = group_lag(cluster, group)?
        .into_iter()
        .filter(|r| r.topic == args.topic)
        .map(|r| (r.partition, r.committed))
        .collect();
    let mut plan = Vec::new();
    for (p, _) in &leaders {
        let start = starts.get(p).copied().unwrap_or(0);
        let end = ends.get(p).copied().unwrap_or(start);
        let cur = current.get(p).copied().unwrap_or(-1);
        let at = by_time.get(p).copied().unwrap_or(-1);
        plan.push((*p, cur, reset_target(args, start, end, cur, at)));
    }
    if args.execute {
        let offsets: Vec<(i32, i64)> = plan.iter().map(|&(p, _, new)| (p, new)).collect();
        commit_offsets(cluster, group, (-1, ""), &args.topic, &offsets)?;
    }
    print_plan(out, args, &plan);
    if !args.execute {
        eprintln!("dry run: nothing committed (add --execute to apply)");
    }
    Ok(())
}

fn print_plan(out: &Output, args: &ResetArgs, plan: &[(i32, i64, i64)]) {
    let group = args.group.as_str();
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|(p, cur, new)| {
            let cells = [
                group,
                &args.topic,
                &p.to_string(),
                &cur.to_string(),
                &new.to_string(),
            ];
            cells.iter().map(|c| c.to_string()).collect()
        })
        .collect();
    let headers = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "NEW-OFFSET",
    ];
    let json = json!({
        "group": group, "topic": args.topic, "executed": args.execute,
        "partitions": plan.iter().map(|(p, cur, new)| json!({
            "partition": p, "current_offset": cur, "new_offset": new,
        })).collect::<Vec<_>>(),
    });
    out.table(&headers, &rows, json);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reset(f: impl FnOnce(&mut ResetArgs)) -> ResetArgs {
        let mut a = ResetArgs {
            group: "g".into(),
            topic: "t".into(),
            to_earliest: false,
            to_latest: false,
            to_offset: None,
            to_datetime: None,
            shift_by: None,
            execute: false,
        };
        f(&mut a);
        a
    }

    #[test]
    fn cli_reset_offsets_targets_are_clamped() {
        let t = |a: ResetArgs, cur: i64| reset_target(&a, 5, 20, cur, -1);
        assert_eq!(t(reset(|a| a.to_earliest = true), 12), 5);
        assert_eq!(t(reset(|a| a.to_latest = true), 12), 20);
        assert_eq!(t(reset(|a| a.to_offset = Some(9)), 12), 9);
        assert_eq!(t(reset(|a| a.to_offset = Some(99)), 12), 20);
        assert_eq!(t(reset(|a| a.shift_by = Some(-3)), 12), 9);
        assert_eq!(t(reset(|a| a.shift_by = Some(-30)), 12), 5);
        assert_eq!(t(reset(|a| a.shift_by = Some(2)), -1), 7);
    }

    #[test]
    fn cli_reset_offsets_to_datetime_targets() {
        let by_time = reset(|a| a.to_datetime = Some("2026-01-01".into()));
        assert_eq!(reset_target(&by_time, 5, 20, 12, 8), 8);
        // no record at or after the time: the log end
        assert_eq!(reset_target(&by_time, 5, 20, 12, -1), 20);
        // a time before the log start answers an offset below it: clamped
        assert_eq!(reset_target(&by_time, 5, 20, 12, 0), 5);
    }

    #[test]
    fn cli_parse_iso8601_datetimes() {
        let day_2026_11_22 = 1_795_305_600_000; // date -u -d 2026-11-22 +%s
        assert_eq!(parse_datetime_ms("2026-11-22"), Ok(day_2026_11_22));
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_datetime_ms("2026-11-22T10:00:00Z"),
            Ok(day_2026_11_22 + 36_000_000)
        );
        assert_eq!(
            parse_datetime_ms("2026-11-22 10:00"),
            Ok(day_2026_11_22 + 36_000_000)
        );
        assert_eq!(
            parse_datetime_ms("2026-11-22T11:00:00.25+01:00"),
            Ok(day_2026_11_22 + 36_000_250)
        );
        assert_eq!(
            parse_datetime_ms("2026-11-22T05:30:00-0430"),
            Ok(day_2026_11_22 + 36_000_000)
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29T00:00:00Z"),
            Ok(1_709_164_800_000)
        );
        for bad in [
            "",
            "2026-13-01",
            "2023-02-29",
            "2026-11-22T25:00",
            "2026-11-22X",
            "22/11/2026",
            "2026-11-22T10:00:00+1",
            "2026-11-22T1:00",
            "2026-11-22T10:00:00.x",
        ] {
            assert!(parse_datetime_ms(bad).is_err(), "{bad:?} accepted");
        }
    }
}
