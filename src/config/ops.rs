//! Operations settings: admin listener, log level, shutdown, lag rules.

use std::net::SocketAddr;

use super::file::FileConfig;
use super::flags::Flags;
use super::*;

/// Operations settings (see `src/ops/`). `log_level` is dynamic: SIGHUP
/// re-reads it; the others take effect at the next start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsConfig {
    /// Admin HTTP listener; `None` when turned off.
    pub admin_listen: Option<SocketAddr>,
    /// Whether the admin listener serves the web console (`/ui/` and its
    /// `/v1/` JSON endpoints; see `src/console/`).
    pub admin_ui: bool,
    /// Log level directive.
    pub log_level: String,
    /// Bound on a graceful stop, in ms.
    pub shutdown_timeout_ms: u64,
    /// Consumer lag status rules (`lag_window_commits`, `lag_stopped_after_ms`).
    pub lag_rules: crate::group::lag::LagRules,
}

/// The web console is on unless turned off (`--admin-ui false`).
pub(super) const ADMIN_UI_DEFAULT: bool = true;

impl OpsConfig {
    /// Flags over file over defaults, validated.
    pub(super) fn resolve(flags: &Flags, file: &FileConfig) -> Result<OpsConfig, ConfigError> {
        let admin_text = flags
            .admin_listen
            .clone()
            .or_else(|| file.admin_listen.clone())
            .unwrap_or_else(|| ADMIN_LISTEN_DEFAULT.to_string());
        let admin_listen = if admin_text == ADMIN_LISTEN_OFF {
            None
        } else {
            Some(parse_addr("admin-listen", &admin_text)?)
        };
        let log_level = flags
            .log_level
            .clone()
            .or_else(|| file.log_level.clone())
            .unwrap_or_else(|| LOG_LEVEL_DEFAULT.to_string());
        crate::ops::logging::parse_level(&log_level)
            .map_err(|e| invalid("log-level", e.to_string()))?;
        let shutdown_timeout_ms = flags
            .shutdown_timeout_ms
            .or(file.shutdown_timeout_ms)
            .unwrap_or(SHUTDOWN_TIMEOUT_MS_DEFAULT);
        if shutdown_timeout_ms < SHUTDOWN_TIMEOUT_MS_MIN {
            return Err(invalid(
                "shutdown-timeout-ms",
                format!("{shutdown_timeout_ms} is below {SHUTDOWN_TIMEOUT_MS_MIN}"),
            ));
        }
        Ok(OpsConfig {
            admin_listen,
            admin_ui: flags.admin_ui.or(file.admin_ui).unwrap_or(ADMIN_UI_DEFAULT),
            log_level,
            shutdown_timeout_ms,
            lag_rules: resolve_lag_rules(flags, file)?,
        })
    }
}

/// `lag_window_commits` and `lag_stopped_after_ms`, flags over file over
/// defaults, validated.
fn resolve_lag_rules(
    flags: &Flags,
    file: &FileConfig,
) -> Result<crate::group::lag::LagRules, ConfigError> {
    use crate::group::lag::{
        LagRules, LAG_STOPPED_AFTER_MS_DEFAULT, LAG_WINDOW_COMMITS_DEFAULT, LAG_WINDOW_COMMITS_MAX,
        LAG_WINDOW_COMMITS_MIN,
    };
    let window_commits = flags
        .lag_window_commits
        .or(file.lag_window_commits)
        .unwrap_or(LAG_WINDOW_COMMITS_DEFAULT);
    if !(LAG_WINDOW_COMMITS_MIN..=LAG_WINDOW_COMMITS_MAX).contains(&window_commits) {
        let range = format!("{LAG_WINDOW_COMMITS_MIN}..={LAG_WINDOW_COMMITS_MAX}");
        let message = format!("{window_commits} is not within {range}");
        return Err(invalid("lag-window-commits", message));
    }
    let stopped_after_ms = flags
        .lag_stopped_after_ms
        .or(file.lag_stopped_after_ms)
        .unwrap_or(LAG_STOPPED_AFTER_MS_DEFAULT);
    let stopped_after_ms = i64::try_from(stopped_after_ms).map_err(|_| {
        invalid(
            "lag-stopped-after-ms",
            format!("{stopped_after_ms} is too large"),
        )
    })?;
    Ok(LagRules {
        window_commits,
        stopped_after_ms,
    })
}
