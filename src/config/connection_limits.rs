//! Connection and request limits.

use super::file::FileConfig;
use super::flags::Flags;
use super::*;

/// Limits that bound what clients can make the broker hold: connections,
/// time, and request bytes in flight. See `server/limits.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections, whole broker.
    pub connections_max: usize,
    /// Open connections per client IP address.
    pub connections_per_ip_max: usize,
    /// connections.max.idle.ms
    pub connections_max_idle_ms: u64,
    /// Time a started request frame has to arrive completely, in ms.
    pub request_timeout_ms: u64,
    /// Request bytes in flight per connection.
    pub connection_request_bytes_in_flight_max: usize,
    /// Request bytes in flight per shard.
    pub shard_request_bytes_in_flight_max: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            connections_max: CONNECTIONS_MAX_DEFAULT,
            connections_per_ip_max: CONNECTIONS_PER_IP_MAX_DEFAULT,
            connections_max_idle_ms: CONNECTIONS_MAX_IDLE_MS_DEFAULT,
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            connection_request_bytes_in_flight_max: CONNECTION_REQUEST_BYTES_IN_FLIGHT_MAX_DEFAULT,
            shard_request_bytes_in_flight_max: SHARD_REQUEST_BYTES_IN_FLIGHT_MAX_DEFAULT,
        }
    }
}

impl ConnectionLimits {
    /// Flags over file over defaults, validated.
    pub(super) fn resolve(
        flags: &Flags,
        file: &FileConfig,
    ) -> Result<ConnectionLimits, ConfigError> {
        let d = ConnectionLimits::default();
        let limits = ConnectionLimits {
            connections_max: flags
                .connections_max
                .or(file.connections_max)
                .unwrap_or(d.connections_max),
            connections_per_ip_max: flags
                .connections_per_ip_max
                .or(file.connections_per_ip_max)
                .unwrap_or(d.connections_per_ip_max),
            connections_max_idle_ms: flags
                .connections_max_idle_ms
                .or(file.connections_max_idle_ms)
                .unwrap_or(d.connections_max_idle_ms),
            request_timeout_ms: flags
                .request_timeout_ms
                .or(file.request_timeout_ms)
                .unwrap_or(d.request_timeout_ms),
            connection_request_bytes_in_flight_max: flags
                .connection_request_bytes_in_flight_max
                .or(file.connection_request_bytes_in_flight_max)
                .unwrap_or(d.connection_request_bytes_in_flight_max),
            shard_request_bytes_in_flight_max: flags
                .shard_request_bytes_in_flight_max
                .or(file.shard_request_bytes_in_flight_max)
                .unwrap_or(d.shard_request_bytes_in_flight_max),
        };
        limits.validate()?;
        Ok(limits)
    }

    /// Counts and byte limits at least 1; timers at least
    /// [`CONNECTION_TIMEOUT_MS_MIN`].
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let counts = [
            ("connections-max", self.connections_max),
            ("connections-per-ip-max", self.connections_per_ip_max),
            (
                "connection-request-bytes-in-flight-max",
                self.connection_request_bytes_in_flight_max,
            ),
            (
                "shard-request-bytes-in-flight-max",
                self.shard_request_bytes_in_flight_max,
            ),
        ];
        for (key, value) in counts {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        let timers = [
            ("connections-max-idle-ms", self.connections_max_idle_ms),
            ("request-timeout-ms", self.request_timeout_ms),
        ];
        for (key, value) in timers {
            if value < CONNECTION_TIMEOUT_MS_MIN {
                let message = format!("{value} is below {CONNECTION_TIMEOUT_MS_MIN}");
                return Err(invalid(key, message));
            }
        }
        Ok(())
    }
}
