//! Tests of DescribeConfigs.
use std::collections::BTreeMap;

use kafka_protocol::protocol::Encodable;

use super::*;
use crate::config::Flags;

fn config() -> Config {
    Config::resolve(Flags::default()).unwrap()
}

fn resource(kind: i8, name: &str, keys: Option<Vec<&str>>) -> DescribeConfigsResource {
    DescribeConfigsResource::default()
        .with_resource_type(kind)
        .with_resource_name(StrBytes::from_string(name.into()))
        .with_configuration_keys(keys.map(|k| {
            k.into_iter()
                .map(|s| StrBytes::from_string(s.into()))
                .collect()
        }))
}

fn topic() -> TopicMeta {
    let configs: BTreeMap<String, String> = [
        ("retention.ms".to_string(), "1000".to_string()),
        ("cleanup.policy".to_string(), "compact".to_string()),
    ]
    .into();
    TopicMeta::new("t".into(), uuid::Uuid::new_v4(), vec![0], configs)
}

#[test]
fn describe_configs_topic_sources_synonyms_and_filter() {
    let c = config();
    let detail = Detail {
        version: 4,
        synonyms: true,
        documentation: true,
    };
    let r = describe_resource(
        &c,
        &c.log_defaults,
        &resource(RESOURCE_TOPIC, "t", None),
        Some(&topic()),
        detail,
    );
    assert_eq!(r.error_code, 0);
    assert_eq!(r.configs.len(), CONFIG_KEYS.len());
    let get = |n: &str| {
        r.configs
            .iter()
            .find(|e| e.name.as_str() == n)
            .unwrap()
            .clone()
    };
    let retention = get("retention.ms");
    assert_eq!(retention.value.as_deref(), Some("1000"));
    assert_eq!(retention.config_source, source::DYNAMIC_TOPIC_CONFIG);
    assert_eq!(retention.synonyms.len(), 2);
    assert_eq!(retention.synonyms[1].name.as_str(), "log.retention.hours");
    assert_eq!(retention.config_type, ConfigKind::Long.code());
    assert!(retention.documentation.is_some() && !retention.read_only);
    let segment = get("segment.bytes");
    assert_eq!(segment.config_source, source::DEFAULT_CONFIG);
    assert_eq!(segment.value.as_deref(), Some("1073741824"));
    let only = describe_resource(
        &c,
        &c.log_defaults,
        &resource(RESOURCE_TOPIC, "t", Some(vec!["cleanup.policy"])),
        Some(&topic()),
        detail,
    );
    assert_eq!(only.configs.len(), 1);
    assert_eq!(only.configs[0].value.as_deref(), Some("compact"));
    let missing = describe_resource(
        &c,
        &c.log_defaults,
        &resource(RESOURCE_TOPIC, "nope", None),
        None,
        detail,
    );
    assert_eq!(
        missing.error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

#[test]
fn describe_configs_broker_log_keys_dynamic_others_read_only() {
    let c = config();
    let detail = Detail {
        version: 2,
        synonyms: false,
        documentation: false,
    };
    let r = describe_resource(
        &c,
        &c.log_defaults,
        &resource(RESOURCE_BROKER, "0", None),
        None,
        detail,
    );
    assert_eq!(r.error_code, 0);
    let hours = r
        .configs
        .iter()
        .find(|e| e.name.as_str() == "log.retention.hours")
        .unwrap();
    assert_eq!(hours.value.as_deref(), Some("168"));
    assert!(!hours.read_only && hours.synonyms.is_empty());
    let node = r
        .configs
        .iter()
        .find(|e| e.name.as_str() == "node.id")
        .unwrap();
    assert!(node.read_only);
    assert!(r
        .configs
        .iter()
        .any(|e| e.name.as_str() == "log.retention.check.interval.ms"));
    let other = describe_resource(
        &c,
        &c.log_defaults,
        &resource(RESOURCE_BROKER, "7", None),
        None,
        detail,
    );
    assert_eq!(other.error_code, ResponseError::InvalidRequest.code());
    let logger = describe_resource(&c, &c.log_defaults, &resource(8, "0", None), None, detail);
    assert_eq!(logger.error_code, ResponseError::InvalidRequest.code());
}

#[test]
fn describe_configs_response_encodes_every_version() {
    let c = config();
    let crate_min =
        <DescribeConfigsResponse as kafka_protocol::protocol::Message>::VERSIONS.min;
    for v in crate_min..=API.max {
        let detail = Detail {
            version: v,
            synonyms: true,
            documentation: true,
        };
        let results = vec![
            describe_resource(
                &c,
                &c.log_defaults,
                &resource(RESOURCE_TOPIC, "t", None),
                Some(&topic()),
                detail,
            ),
            describe_resource(
                &c,
                &c.log_defaults,
                &resource(RESOURCE_BROKER, "", None),
                None,
                detail,
            ),
            describe_resource(
                &c,
                &c.log_defaults,
                &resource(RESOURCE_TOPIC, "x", None),
                None,
                detail,
            ),
        ];
        let response = DescribeConfigsResponse::default().with_results(results);
        let mut buf = bytes::BytesMut::new();
        response
            .encode(&mut buf, v)
            .unwrap_or_else(|e| panic!("v{v}: {e}"));
    }
}

#[test]
fn describe_configs_v3_v4_documentation_for_every_topic_broker_and_group_key() {
    let c = config();
    for version in 3..=API.max {
        for (kind, name, topic) in [
            (RESOURCE_TOPIC, "t", Some(topic())),
            (RESOURCE_BROKER, "0", None),
            (RESOURCE_GROUP, "g", None),
        ] {
            for documentation in [true, false] {
                let detail = Detail {
                    version,
                    synonyms: false,
                    documentation,
                };
                let r = describe_resource(
                    &c,
                    &c.log_defaults,
                    &resource(kind, name, None),
                    topic.as_ref(),
                    detail,
                );
                assert!(!r.configs.is_empty());
                for e in &r.configs {
                    let has_doc = e.documentation.as_ref().is_some_and(|d| !d.is_empty());
                    assert_eq!(has_doc, documentation, "v{version} {kind} {}", e.name);
                }
            }
        }
    }
}

#[test]
fn describe_configs_broker_synonyms_walk_the_chain_layer_by_layer_as_kafka() {
    use crate::metadata::topic_config::DynamicBrokerConfigs;
    let c = config();
    let statics =
        LogDefaults::from_pairs([("log.retention.hours".to_string(), "2".to_string())]).unwrap();
    let dynamic = DynamicBrokerConfigs {
        broker: [("log.retention.ms".to_string(), "60000".to_string())].into(),
        cluster_default: BTreeMap::new(),
    };
    let defaults = statics.with_dynamic(&dynamic);
    let detail = Detail {
        version: 4,
        synonyms: true,
        documentation: false,
    };
    let r = describe_resource(
        &c,
        &defaults,
        &resource(
            RESOURCE_BROKER,
            &c.node_id.to_string(),
            Some(vec!["log.retention.ms", "log.retention.hours"]),
        ),
        None,
        detail,
    );
    let chain = |name: &str| {
        let e = r.configs.iter().find(|e| e.name.as_str() == name).unwrap();
        let synonyms: Vec<(String, String, i8)> = e
            .synonyms
            .iter()
            .map(|s| {
                let value = s.value.as_deref().unwrap_or("").to_string();
                (s.name.to_string(), value, s.source)
            })
            .collect();
        (e.config_source, synonyms)
    };
    let s = |n: &str, v: &str, source: i8| (n.to_string(), v.to_string(), source);
    assert_eq!(
        chain("log.retention.ms"),
        (
            source::DYNAMIC_BROKER_CONFIG,
            vec![
                s("log.retention.ms", "60000", source::DYNAMIC_BROKER_CONFIG),
                s("log.retention.hours", "2", source::STATIC_BROKER_CONFIG),
                s("log.retention.hours", "168", source::DEFAULT_CONFIG),
            ]
        )
    );
    assert_eq!(
        chain("log.retention.hours"),
        (
            source::STATIC_BROKER_CONFIG,
            vec![
                s("log.retention.hours", "2", source::STATIC_BROKER_CONFIG),
                s("log.retention.hours", "168", source::DEFAULT_CONFIG),
            ]
        ),
        "the keys above the described one are left out"
    );
}
