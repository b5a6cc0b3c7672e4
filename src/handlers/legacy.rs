//! The versions Kafka 3.9 served and Kafka 4 removed (KIP-896) that carry
//! no record data (`protocol::legacy` codes them): each request is turned
//! into the crate's oldest version of its API, answered by that API's
//! handler as that version, and the answer turned back. The handlers know
//! nothing of the old versions.

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Decodable;

use super::{
    create_topics, delete_topics, describe_configs, list_offsets, offset_commit, offset_fetch,
    respond_or_close, Outcome, RequestContext,
};
use crate::protocol::frame::ParsedHeader;
use crate::protocol::legacy::{
    create_topics as create_topics_v0_1, delete_topics as delete_topics_v0,
    describe_configs as describe_configs_v0, list_offsets as list_offsets_v0,
    offset_commit as offset_commit_v0_1, offset_fetch as offset_fetch_v0,
};

/// Answers a request of a version `protocol::legacy::is_legacy` names.
pub(super) async fn dispatch(
    ctx: RequestContext,
    key: ApiKey,
    header: &ParsedHeader,
    mut body: Bytes,
) -> Outcome {
    let version = ctx.version;
    macro_rules! decode {
        ($type:ty) => {
            match <$type>::decode(&mut body, version) {
                Ok(request) => request,
                Err(e) => {
                    return Outcome::Close(format!("{key:?} v{version} body does not decode: {e}"))
                }
            }
        };
    }
    match key {
        ApiKey::ListOffsets => {
            let request = decode!(list_offsets_v0::ListOffsetsRequestV0);
            let ctx = handled_as(ctx, list_offsets_v0::HANDLED_AS);
            let response = list_offsets::handle(&ctx, request.to_current()).await;
            let response = list_offsets_v0::ListOffsetsResponseV0::from_current(&request, response);
            respond_or_close(header, version, &response)
        }
        ApiKey::OffsetCommit => {
            let request = decode!(offset_commit_v0_1::OffsetCommitRequestV0V1);
            let ctx = handled_as(ctx, offset_commit_v0_1::HANDLED_AS);
            let response = offset_commit::handle(&ctx, request.to_current()).await;
            let response = offset_commit_v0_1::OffsetCommitResponseV0V1(response);
            respond_or_close(header, version, &response)
        }
        ApiKey::OffsetFetch => {
            let request = decode!(offset_fetch_v0::OffsetFetchRequestV0);
            let ctx = handled_as(ctx, offset_fetch_v0::HANDLED_AS);
            let response = offset_fetch::handle(&ctx, request.0).await;
            respond_or_close(
                header,
                version,
                &offset_fetch_v0::OffsetFetchResponseV0(response),
            )
        }
        ApiKey::CreateTopics => {
            let request = decode!(create_topics_v0_1::CreateTopicsRequestV0V1);
            let ctx = handled_as(ctx, create_topics_v0_1::HANDLED_AS);
            let response = create_topics::handle(&ctx, request.0).await;
            let response = create_topics_v0_1::CreateTopicsResponseV0V1(response);
            respond_or_close(header, version, &response)
        }
        ApiKey::DeleteTopics => {
            let request = decode!(delete_topics_v0::DeleteTopicsRequestV0);
            let ctx = handled_as(ctx, delete_topics_v0::HANDLED_AS);
            let response = delete_topics::handle(&ctx, request.0).await;
            let response = delete_topics_v0::DeleteTopicsResponseV0(response);
            respond_or_close(header, version, &response)
        }
        ApiKey::DescribeConfigs => {
            let request = decode!(describe_configs_v0::DescribeConfigsRequestV0);
            let ctx = handled_as(ctx, describe_configs_v0::HANDLED_AS);
            let response = describe_configs::handle(&ctx, request.0).await;
            let response = describe_configs_v0::DescribeConfigsResponseV0(response);
            respond_or_close(header, version, &response)
        }
        other => Outcome::Close(format!("{other:?} v{version} has no legacy codec")),
    }
}

/// The context a handler sees: the crate version the request became.
fn handled_as(ctx: RequestContext, version: i16) -> RequestContext {
    RequestContext { version, ..ctx }
}
