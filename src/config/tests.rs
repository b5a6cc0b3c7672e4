use super::*;

#[test]
fn config_defaults_without_flags() {
    let c = Config::resolve(Flags::default()).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:9092");
    assert_eq!(c.advertised_port, 9092);
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert!(c.auto_create_topics);
    assert_eq!(c.default_partitions, 1);
    assert_eq!(c.segment_bytes, SEGMENT_BYTES_DEFAULT);
    assert_eq!(c.limits, ConnectionLimits::default());
    assert_eq!(c.limits.connections_max_idle_ms, 600_000);
}

#[test]
fn config_limits_from_file_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "connections_per_ip_max = 5\nrequest_timeout_ms = 2000\n",
    )
    .unwrap();
    let c = Config::resolve(Flags {
        config: Some(path),
        request_timeout_ms: Some(3000),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.limits.connections_per_ip_max, 5);
    assert_eq!(c.limits.request_timeout_ms, 3000);
    let err = Config::resolve(Flags {
        connections_max: Some(0),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("connections-max"), "{err}");
}

#[test]
fn config_tail_cache_bytes_from_file_default_and_range() {
    let c = Config::resolve(Flags::default()).unwrap();
    assert_eq!(c.tail_cache_bytes, TAIL_CACHE_SHARD_BYTES_DEFAULT);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "tail_cache_bytes = 0\n").unwrap();
    let c = Config::resolve(Flags {
        config: Some(path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.tail_cache_bytes, 0, "0 turns the cache off");
    let err = Config::resolve(Flags {
        tail_cache_bytes: Some(TAIL_CACHE_SHARD_BYTES_MAX + 1),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("tail-cache-bytes"), "{err}");
    // The reserve (budget plus a quarter, every shard) must fit in 3/4 of
    // the RAM: 2 shards x 320 MiB fits in 1 GiB, not in 512 MiB.
    assert!(super::check_tail_cache_reserve(256 << 20, 2, 1 << 30).is_ok());
    let err = super::check_tail_cache_reserve(256 << 20, 2, 512 << 20).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("tail-cache-bytes") && text.contains("640 MiB over 2 shards"),
        "{text}"
    );
    assert!(
        super::check_tail_cache_reserve(usize::MAX, 2, 0).is_ok(),
        "unknown RAM: not checked"
    );
    let err = Config::resolve(Flags {
        tail_cache_bytes: Some(TAIL_CACHE_SHARD_BYTES_MAX),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("of RAM"), "{err}");
}

#[test]
fn config_bad_shards_named() {
    let err = Config::resolve(Flags {
        shards: Some(0),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("shards"), "{err}");
}

#[test]
fn config_fault_abort_at_parsed_and_unknown_step_refused() {
    use crate::storage::fault::{AbortAt, Action, Step};
    let c = Config::resolve(Flags::default()).unwrap();
    assert_eq!(c.fault_abort_at, None, "off by default");
    let c = Config::resolve(Flags {
        fault_abort_at: Some("segment_log_removed:2".into()),
        ..Default::default()
    })
    .unwrap();
    let at = AbortAt {
        step: Step::SegmentLogRemoved,
        nth: 2,
        action: Action::Abort,
    };
    assert_eq!(c.fault_abort_at, Some(at));
    let c = Config::resolve(Flags {
        fault_panic_at: Some("segment_log_removed:2".into()),
        ..Default::default()
    })
    .unwrap();
    let at = AbortAt {
        action: Action::Panic,
        ..at
    };
    assert_eq!(c.fault_abort_at, Some(at));
    let err = Config::resolve(Flags {
        fault_abort_at: Some("segment_log_removed".into()),
        fault_panic_at: Some("segment_log_removed".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("cannot be combined"), "{err}");
    let err = Config::resolve(Flags {
        fault_abort_at: Some("no_such_step".into()),
        ..Default::default()
    })
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("fault-abort-at") && text.contains("unknown step 'no_such_step'"),
        "{text}"
    );
}

#[test]
fn config_file_unknown_key_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:1\"\nbogus_key = 3\n").unwrap();
    let err = Config::resolve(Flags {
        config: Some(path),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("bogus_key"), "{err}");
}

#[test]
fn config_flag_overrides_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "default_partitions = 4\nnode_id = 3\n").unwrap();
    let c = Config::resolve(Flags {
        config: Some(path),
        node_id: Some(7),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.default_partitions, 4);
    assert_eq!(c.node_id, 7);
}

mod error_location {
    use super::*;

    fn resolve_file(text: &str, flags: Flags) -> (String, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corestream.toml");
        std::fs::write(&path, text).unwrap();
        let shown = path.display().to_string();
        let result = Config::resolve(Flags {
            config: Some(path),
            ..flags
        });
        (shown, result)
    }

    #[test]
    fn config_error_unknown_key_names_file_line_key() {
        let (path, r) = resolve_file(
            "listen = \"127.0.0.1:1\"\n\nbogus_key = 3\n",
            Flags::default(),
        );
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("config file {path}:3: key bogus_key: ")),
            "{text}"
        );
        assert!(text.contains("unknown field"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }

    #[test]
    fn config_error_bad_type_names_file_line_key() {
        let (path, r) = resolve_file("node_id = 1\nshards = \"four\"\n", Flags::default());
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("config file {path}:2: key shards: ")),
            "{text}"
        );
    }

    #[test]
    fn config_error_bad_syntax_names_line() {
        let (path, r) = resolve_file("node_id = 1\nlisten = \n", Flags::default());
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("config file {path}:2: key listen: ")),
            "{text}"
        );
    }

    #[test]
    fn config_error_out_of_range_value_names_file_line_key() {
        let (path, r) = resolve_file("node_id = 1\n  segment_bytes = 5\n", Flags::default());
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("config file {path}:2: key segment_bytes: ")),
            "{text}"
        );
        let (_, r) = resolve_file("log_level = \"info,=[\"\n", Flags::default());
        assert!(r.unwrap_err().to_string().contains(":1: key log_level: "));
    }

    #[test]
    fn config_error_from_flag_does_not_blame_file() {
        let flags = Flags {
            segment_bytes: Some(5),
            ..Default::default()
        };
        let (_, r) = resolve_file("segment_bytes = 1048576\n", flags);
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with("invalid value for segment-bytes"),
            "{text}"
        );
    }

    #[test]
    fn config_ops_keys_defaults_and_overrides() {
        let c = Config::resolve(Flags::default()).unwrap();
        assert_eq!(c.ops.admin_listen, Some("127.0.0.1:9644".parse().unwrap()));
        assert_eq!(c.ops.log_level, "info");
        assert_eq!(c.ops.shutdown_timeout_ms, SHUTDOWN_TIMEOUT_MS_DEFAULT);
        let (_, r) = resolve_file(
            "admin_listen = \"off\"\nlog_level = \"debug\"\nshutdown_timeout_ms = 5000\n",
            Flags::default(),
        );
        let c = r.unwrap();
        assert_eq!(c.ops.admin_listen, None);
        assert_eq!(c.ops.log_level, "debug");
        assert_eq!(c.ops.shutdown_timeout_ms, 5000);
    }

    #[test]
    fn config_lag_rules_defaults_file_and_range() {
        use crate::group::lag::LagRules;
        let c = Config::resolve(Flags::default()).unwrap();
        assert_eq!(c.ops.lag_rules, LagRules::default());
        let flags = Flags {
            lag_stopped_after_ms: Some(1500),
            ..Default::default()
        };
        let (_, r) = resolve_file("lag_window_commits = 4\nlag_stopped_after_ms = 9\n", flags);
        let rules = r.unwrap().ops.lag_rules;
        assert_eq!((rules.window_commits, rules.stopped_after_ms), (4, 1500));
        let (path, r) = resolve_file("node_id = 1\nlag_window_commits = 1\n", Flags::default());
        let text = r.unwrap_err().to_string();
        let want = format!("config file {path}:2: key lag_window_commits: ");
        assert!(text.starts_with(&want), "{text}");
    }
}

mod table {
    use super::super::broker::BrokerSettings;
    use super::super::file::FileConfig;
    use super::super::table::Setting;
    use super::*;

    #[test]
    fn config_table_defaults_within_bounds() {
        let b = BrokerSettings::resolve(&Flags::default(), &FileConfig::default()).unwrap();
        assert_eq!(b.segment_bytes, SEGMENT_BYTES_DEFAULT);
        assert_eq!(b.node_id, NODE_ID_DEFAULT);
        assert!(b.auto_create_topics);
        b.check_relations().unwrap();
    }

    #[test]
    fn config_table_keys_are_the_flag_names() {
        let fields: std::collections::HashSet<&str> =
            BrokerSettings::ROWS.iter().map(|r| r.field).collect();
        assert_eq!(
            fields.len(),
            BrokerSettings::ROWS.len(),
            "one row per field"
        );
        for row in BrokerSettings::ROWS {
            assert_eq!(row.key.replace('-', "_"), row.field, "{row:?}");
            assert!(row.field.ends_with("_ms") == (row.unit == "ms"), "{row:?}");
            assert!(
                row.field.ends_with("_bytes") <= (row.unit == "bytes"),
                "{row:?}"
            );
        }
    }

    #[test]
    fn config_table_error_names_key_value_range_and_unit() {
        let row = Setting::<u64> {
            key: "segment-bytes",
            default: 1 << 20,
            min: 64 << 10,
            max: SEGMENT_BYTES_MAX,
            unit: "bytes",
        };
        assert_eq!(row.pick(None, None).unwrap(), 1 << 20, "default");
        assert_eq!(row.pick(None, Some(70_000)).unwrap(), 70_000, "file");
        assert_eq!(
            row.pick(Some(80_000), Some(70_000)).unwrap(),
            80_000,
            "flag wins"
        );
        let text = row.pick(Some(5), None).unwrap_err().to_string();
        assert_eq!(
            text,
            "invalid value for segment-bytes: 5 is not within 65536..=2147483647 bytes"
        );
        let at_least = Setting::<u64> {
            min: 1,
            max: u64::MAX,
            unit: "ms",
            ..row
        };
        let text = at_least.pick(Some(0), None).unwrap_err().to_string();
        assert!(text.ends_with(": 0 is below 1 ms"), "{text}");
        let at_most = Setting::<i32> {
            key: "x",
            default: 0,
            min: i32::MIN,
            max: 9,
            unit: "",
        };
        let text = at_most.pick(None, Some(10)).unwrap_err().to_string();
        assert!(text.ends_with(": 10 is above 9"), "{text}");
    }

    #[test]
    fn config_segment_bytes_bound_is_kafkas_int_in_config_and_topic_configs() {
        assert_eq!(SEGMENT_BYTES_MAX, i32::MAX as u64);
        let ok = Flags {
            segment_bytes: Some(SEGMENT_BYTES_MAX),
            ..Default::default()
        };
        assert_eq!(
            Config::resolve(ok).unwrap().segment_bytes,
            SEGMENT_BYTES_MAX
        );
        let over = Flags {
            segment_bytes: Some(SEGMENT_BYTES_MAX + 1),
            ..Default::default()
        };
        let text = Config::resolve(over).unwrap_err().to_string();
        assert!(
            text.contains("segment-bytes") && text.contains("2147483648"),
            "{text}"
        );
        let topic = crate::metadata::topic_config::validate_overrides([(
            "segment.bytes".to_string(),
            Some((SEGMENT_BYTES_MAX + 1).to_string()),
        )]);
        assert!(topic.is_err(), "topic configs share the bound");
    }

    #[test]
    fn config_heartbeat_interval_below_session_timeout() {
        let flags = Flags {
            group_consumer_session_timeout_ms: Some(1000),
            group_consumer_heartbeat_interval_ms: Some(1000),
            ..Default::default()
        };
        let text = Config::resolve(flags).unwrap_err().to_string();
        assert!(
            text.contains("group-consumer-heartbeat-interval-ms")
                && text.contains("group-consumer-session-timeout-ms (1000)"),
            "{text}"
        );
    }
}

#[test]
fn config_authorizer_from_file_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "authorizer = \"acl\"\nsuper_users = \"User:admin;User:broker\"\nallow_everyone_if_no_acl_found = true\n",
    )
    .unwrap();
    let c = Config::resolve(Flags {
        config: Some(path),
        ..Default::default()
    })
    .unwrap();
    let a = c.security.authorizer.expect("authorizer on");
    assert!(a.allow_everyone_if_no_acl_found);
    assert_eq!(a.super_users.len(), 2);
    assert!(a.super_users.contains("User:broker"));
    assert!(Config::resolve(Flags::default())
        .unwrap()
        .security
        .authorizer
        .is_none());
    for bad in [
        Flags {
            authorizer: Some("simple".into()),
            ..Default::default()
        },
        Flags {
            super_users: Some("User:admin".into()),
            ..Default::default()
        },
        Flags {
            authorizer: Some("acl".into()),
            super_users: Some("admin".into()),
            ..Default::default()
        },
    ] {
        assert!(Config::resolve(bad).is_err());
    }
}

#[test]
fn config_admin_ui_principal_defaults_to_anonymous_and_must_be_type_name() {
    let c = Config::resolve(Flags::default()).unwrap();
    assert_eq!(c.security.admin_ui_principal, "User:ANONYMOUS");
    let c = Config::resolve(Flags {
        admin_ui_principal: Some(" User:console ".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.security.admin_ui_principal, "User:console");
    for bad in ["console", "User:", ":x", "User:a;User:b"] {
        let e = Config::resolve(Flags {
            admin_ui_principal: Some(bad.into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("admin-ui-principal"), "{bad}: {e}");
    }
}
