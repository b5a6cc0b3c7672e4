//! Tests of topic configs: defaults, synonyms, validation, alter ops.

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn config_keys_sorted_and_defaults_valid() {
    let names: Vec<_> = CONFIG_KEYS.iter().map(|k| k.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for key in CONFIG_KEYS {
        assert!(
            validate_topic_value(key.name, key.default).is_ok(),
            "{}",
            key.name
        );
    }
    let c = TopicConfig::default();
    assert!(c.cleanup_delete && !c.cleanup_compact);
    assert_eq!(c.retention_ms, 604_800_000);
    assert_eq!(c.max_message_bytes, 1_048_588);
    assert_eq!(c.segment_bytes, 1 << 30);
}

#[test]
fn config_validation_names_the_key() {
    let e = validate_topic_value("retention.ms", "abc").unwrap_err();
    assert_eq!(
        e.message,
        "Invalid value abc for configuration retention.ms: Not a number of type LONG"
    );
    let e = validate_topic_value("retention.ms", "-2").unwrap_err();
    assert!(e.message.contains("at least -1"), "{}", e.message);
    let e = validate_topic_value("cleanup.policy", "compact,shred").unwrap_err();
    assert!(e.message.contains("cleanup.policy") && e.message.contains("shred"));
    let e = validate_topic_value("no.such.key", "1").unwrap_err();
    assert_eq!(e.message, "Unknown topic config name: no.such.key");
    assert_eq!(
        e.error_code(),
        kafka_protocol::ResponseError::InvalidConfig.code()
    );
    assert_eq!(
        validate_topic_value("cleanup.policy", " compact , delete ").unwrap(),
        "compact,delete"
    );
    assert!(validate_topic_value("min.cleanable.dirty.ratio", "1.5").is_err());
    assert!(validate_topic_value("segment.bytes", "3000000000").is_err());
    assert!(validate_topic_value("message.timestamp.type", "LogAppendTime").is_ok());
}

#[test]
fn config_broker_synonyms_and_precedence() {
    let d = LogDefaults::from_pairs([
        ("log.retention.hours".to_string(), "2".to_string()),
        ("log.segment.bytes".to_string(), "1048576".to_string()),
        (
            "log.retention.check.interval.ms".to_string(),
            "1000".to_string(),
        ),
    ])
    .unwrap();
    assert_eq!(d.retention_check_interval_ms, 1000);
    let c = TopicConfig::resolve(&d, &BTreeMap::new());
    assert_eq!(c.retention_ms, 2 * MS_PER_HOUR);
    assert_eq!(c.segment_bytes, 1 << 20);
    let c = TopicConfig::resolve(&d, &map(&[("retention.ms", "5")]));
    assert_eq!(c.retention_ms, 5);
    let entries = resolve_entries(&d, &map(&[("retention.ms", "5")]));
    let r = entries
        .iter()
        .find(|e| e.key.name == "retention.ms")
        .unwrap();
    assert_eq!(r.source, source::DYNAMIC_TOPIC_CONFIG);
    assert_eq!(
        r.synonyms,
        vec![
            (
                "retention.ms".into(),
                "5".into(),
                source::DYNAMIC_TOPIC_CONFIG
            ),
            (
                "log.retention.hours".into(),
                "2".into(),
                source::STATIC_BROKER_CONFIG
            ),
            (
                "log.retention.hours".into(),
                "168".into(),
                source::DEFAULT_CONFIG
            ),
        ]
    );
    let s = entries
        .iter()
        .find(|e| e.key.name == "segment.bytes")
        .unwrap();
    assert_eq!(
        (s.value.as_str(), s.source),
        ("1048576", source::STATIC_BROKER_CONFIG)
    );
    let e = LogDefaults::from_pairs([("log.bogus".to_string(), "1".to_string())]).unwrap_err();
    assert!(e.message.contains("log.bogus"));
    let e = LogDefaults::from_pairs([("log.retention.hours".to_string(), "x".to_string())])
        .unwrap_err();
    assert!(e.message.contains("log.retention.hours"));
    let table: toml::Table =
        toml::from_str("log.retention.hours = 3\nlog.cleanup.policy = [\"compact\", \"delete\"]\n")
            .unwrap();
    let pairs = toml_pairs("log", table["log"].as_table().unwrap());
    assert!(pairs.contains(&("log.retention.hours".into(), "3".into())));
    assert!(pairs.contains(&("log.cleanup.policy".into(), "compact,delete".into())));
    let entries = d.broker_entries();
    assert!(entries.contains(&(
        "log.retention.hours".into(),
        "2".into(),
        source::STATIC_BROKER_CONFIG
    )));
    assert!(entries.contains(&(
        "log.retention.bytes".into(),
        "-1".into(),
        source::DEFAULT_CONFIG
    )));
}

#[test]
fn config_incremental_ops() {
    let d = LogDefaults::default();
    let cur = map(&[("retention.ms", "100")]);
    let edit = ConfigEdit::Incremental(vec![
        (
            "cleanup.policy".into(),
            AlterOp::Append,
            Some("compact".into()),
        ),
        ("retention.ms".into(), AlterOp::Delete, None),
        ("segment.bytes".into(), AlterOp::Set, Some("4096".into())),
    ]);
    let next = apply_edit(&d, &cur, &edit).unwrap();
    assert_eq!(
        next,
        map(&[
            ("cleanup.policy", "delete,compact"),
            ("segment.bytes", "4096")
        ])
    );
    let sub = ConfigEdit::Incremental(vec![(
        "cleanup.policy".into(),
        AlterOp::Subtract,
        Some("delete".into()),
    )]);
    assert_eq!(
        apply_edit(&d, &next, &sub).unwrap()["cleanup.policy"],
        "compact"
    );
    let bad = ConfigEdit::Incremental(vec![(
        "retention.ms".into(),
        AlterOp::Append,
        Some("1".into()),
    )]);
    let e = apply_edit(&d, &cur, &bad).unwrap_err();
    assert!(e.invalid_request && e.message.contains("retention.ms"));
    let replace = ConfigEdit::Replace(map(&[("retention.bytes", "10")]));
    assert_eq!(
        apply_edit(&d, &cur, &replace).unwrap(),
        map(&[("retention.bytes", "10")])
    );
}

#[test]
fn config_kafka4_topic_keys_accepted_with_kafka_ranges() {
    for (name, good, bad) in [
        ("flush.ms", "1000", "-1"),
        ("flush.messages", "1", "0"),
        ("compression.gzip.level", "-1", "0"),
        ("compression.gzip.level", "9", "10"),
        ("compression.lz4.level", "17", "18"),
        ("compression.zstd.level", "-131072", "23"),
        ("file.delete.delay.ms", "0", "-1"),
        ("local.retention.ms", "-2", "-3"),
        ("local.retention.bytes", "-2", "-3"),
        ("segment.index.bytes", "4", "3"),
        ("segment.jitter.ms", "0", "-1"),
        ("preallocate", "true", "yes"),
        ("unclean.leader.election.enable", "false", "1"),
        ("message.downconversion.enable", "false", "no"),
        ("remote.log.copy.disable", "true", "x"),
        ("remote.log.delete.on.disable", "true", "x"),
        ("leader.replication.throttled.replicas", "0:1,1:1", "0-1"),
        ("follower.replication.throttled.replicas", "*", "*,0:1"),
    ] {
        assert!(validate_topic_value(name, good).is_ok(), "{name}={good}");
        let e = validate_topic_value(name, bad).unwrap_err();
        assert_eq!(e.key, name, "{name}={bad}");
    }
    assert!(validate_topic_value("remote.storage.enable", "false").is_ok());
    let e = validate_topic_value("remote.storage.enable", "true").unwrap_err();
    assert!(e.message.contains("Tiered Storage"), "{}", e.message);
}

#[test]
fn config_key_without_broker_synonym_reports_its_default_under_itself() {
    let entries = resolve_entries(&LogDefaults::default(), &BTreeMap::new());
    let e = entries
        .iter()
        .find(|e| e.key.name == "remote.storage.enable")
        .unwrap();
    assert_eq!(e.value, "false");
    assert_eq!(
        e.synonyms,
        vec![(
            "remote.storage.enable".to_string(),
            "false".to_string(),
            source::DEFAULT_CONFIG
        )]
    );
}

#[test]
fn config_dynamic_broker_layers_precede_static_per_key() {
    let statics = LogDefaults::from_pairs([
        ("log.retention.hours".to_string(), "2".to_string()),
        ("log.segment.bytes".to_string(), "1000000".to_string()),
    ])
    .unwrap();
    let dynamic = DynamicBrokerConfigs {
        broker: map(&[("log.segment.bytes", "2000000")]),
        cluster_default: map(&[
            ("log.retention.ms", "60000"),
            ("log.segment.bytes", "3000000"),
        ]),
    };
    let d = statics.with_dynamic(&dynamic);
    let c = TopicConfig::resolve(&d, &BTreeMap::new());
    // log.retention.ms (dynamic default) precedes log.retention.hours (static).
    assert_eq!(c.retention_ms, 60_000);
    assert_eq!(c.segment_bytes, 2_000_000);
    let entries = resolve_entries(&d, &BTreeMap::new());
    let segment = entries
        .iter()
        .find(|e| e.key.name == "segment.bytes")
        .unwrap();
    assert_eq!(segment.source, source::DYNAMIC_BROKER_CONFIG);
    let layers: Vec<i8> = segment.synonyms.iter().map(|s| s.2).collect();
    assert_eq!(
        layers,
        vec![
            source::DYNAMIC_BROKER_CONFIG,
            source::DYNAMIC_DEFAULT_BROKER_CONFIG,
            source::STATIC_BROKER_CONFIG,
            source::DEFAULT_CONFIG
        ]
    );
    assert!(is_dynamic_broker_key("log.flush.interval.ms"));
    assert!(!is_dynamic_broker_key("log.retention.check.interval.ms"));
    assert!(validate_dynamic_broker_value("log.retention.ms", "x")
        .unwrap()
        .is_err());
    assert!(validate_dynamic_broker_value("node.id", "1").is_none());
}
