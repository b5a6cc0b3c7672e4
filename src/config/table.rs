//! The settings table: one row per numeric or boolean setting, one resolver.
//!
//! A row names the `Flags`/`FileConfig` field, the key errors show
//! (`segment-bytes`, the flag's name; the TOML key is it with `_`), the
//! type, the default, the accepted range and the unit:
//!
//! ```text
//! segment_bytes "segment-bytes": u64 = SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX, "bytes";
//! ```
//!
//! [`settings_group!`] turns a list of rows into a struct with one field
//! per row and a `resolve(flags, file)` that takes, for every row, the flag
//! (or its environment variable) over the file over the default, and
//! refuses a value outside the range with the key, the value, the range and
//! the unit (`invalid value for segment-bytes: 5 is not within
//! 65536..=2147483647 bytes`); `Config::resolve` then adds the file and line
//! when the value came from the file.
//!
//! Decisions:
//! - Rows take the field's name from the flags and the file alike, so a row
//!   cannot read one setting's flag and another's file key.
//! - The default may be computed at start (`shards` defaults to the cores
//!   this process may use), so rows are values, not `const`s; the test
//!   `config_table_defaults_within_bounds` resolves every group with nothing
//!   given, which fails if a default is outside its row's range.
//! - Settings whose rules are not a range (addresses, paths, a relation
//!   between two settings, "minutes unless ms is given") stay hand-written
//!   beside the group that holds them; relations are checked after the rows.

use std::fmt::Display;

use super::{invalid, ConfigError};

/// A value a row can hold: ordered, printable, with the type's extremes (a
/// bound at an extreme is left out of the error message).
pub(super) trait SettingValue: Copy + PartialOrd + Display {
    /// The type's smallest value.
    const LOWEST: Self;
    /// The type's largest value.
    const HIGHEST: Self;
}

macro_rules! setting_value {
    ($($t:ty),*) => {
        $(impl SettingValue for $t {
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
        })*
    };
}
setting_value!(u64, usize, i32, i64);

impl SettingValue for bool {
    const LOWEST: Self = false;
    const HIGHEST: Self = true;
}

/// One setting: its key as errors show it, default, inclusive bounds and unit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Setting<T> {
    /// The flag's name (`segment-bytes`).
    pub(super) key: &'static str,
    /// Used when neither flag nor file gives a value.
    pub(super) default: T,
    /// Smallest accepted value.
    pub(super) min: T,
    /// Largest accepted value.
    pub(super) max: T,
    /// Unit shown after numbers in errors ("bytes", "ms"; "" for counts).
    pub(super) unit: &'static str,
}

impl<T: SettingValue> Setting<T> {
    /// The flag over the file over the default, refused outside `min..=max`.
    pub(super) fn pick(&self, flag: Option<T>, file: Option<T>) -> Result<T, ConfigError> {
        let value = flag.or(file).unwrap_or(self.default);
        self.check(value)?;
        Ok(value)
    }

    /// `value` within the bounds, or an error naming key, value and range.
    pub(super) fn check(&self, value: T) -> Result<(), ConfigError> {
        if value >= self.min && value <= self.max {
            return Ok(());
        }
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        let (min, max) = (self.min, self.max);
        let message = if max == T::HIGHEST {
            format!("{value} is below {min}{unit}")
        } else if min == T::LOWEST {
            format!("{value} is above {max}{unit}")
        } else {
            format!("{value} is not within {min}..={max}{unit}")
        };
        Err(invalid(self.key, message))
    }
}

/// A row as data, for tests: field, key and unit.
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(super) struct RowInfo {
    /// The `Flags`/`FileConfig` field.
    pub(super) field: &'static str,
    /// The key errors show.
    pub(super) key: &'static str,
    /// The unit.
    pub(super) unit: &'static str,
}

/// Declares a group of table-driven settings; see the module docs.
macro_rules! settings_group {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident $key:literal : $ty:ty = $default:expr, $min:expr, $max:expr, $unit:literal;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        $vis struct $name {
            $( $(#[$fmeta])* pub(super) $field: $ty, )*
        }

        impl $name {
            /// The group's rows, in declaration order.
            #[cfg(test)]
            pub(super) const ROWS: &'static [$crate::config::table::RowInfo] = &[
                $( $crate::config::table::RowInfo {
                    field: stringify!($field),
                    key: $key,
                    unit: $unit,
                }, )*
            ];

            /// Every row: flag over file over default, within its bounds.
            pub(super) fn resolve(
                flags: &$crate::config::Flags,
                file: &$crate::config::file::FileConfig,
            ) -> Result<Self, $crate::config::ConfigError> {
                Ok($name {
                    $( $field: $crate::config::table::Setting::<$ty> {
                        key: $key,
                        default: $default,
                        min: $min,
                        max: $max,
                        unit: $unit,
                    }
                    .pick(flags.$field, file.$field)?, )*
                })
            }
        }

        $(
            #[allow(unused_comparisons, clippy::absurd_extreme_comparisons)]
            const _: () = assert!($min <= $max, concat!("bounds of ", $key));
        )*
    };
}
pub(super) use settings_group;
