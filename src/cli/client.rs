//! A small blocking Kafka client over std TCP: enough for an admin tool.
//!
//! Decisions:
//! - Plain `std::net::TcpStream`, one request at a time, with read and write
//!   timeouts: the CLI is a short-lived process, so blocking I/O is the
//!   simplest correct choice (the no-blocking rule is for shard threads).
//! - Bodies are the `kafka-protocol` crate's structs. Each connection asks
//!   ApiVersions (v0, which every broker answers) first and every request is
//!   sent at `min(our highest understood version, the broker's highest)`,
//!   so the CLI works against corestream and against any Kafka cluster.
//! - [`Cluster`] keeps the bootstrap connection plus one connection per
//!   broker it had to reach (partition leaders, group coordinators).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, FindCoordinatorRequest, MetadataRequest, MetadataResponse,
    ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion, Message, Request, StrBytes};

use crate::protocol::request_frame::put_request;

/// Client id sent in every request header.
pub const CLIENT_ID: &str = "corestream-cli";
/// Connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read/write timeout of one request (long enough for a long-poll fetch).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response accepted, in bytes.
pub const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;

/// What went wrong talking to the cluster.
#[derive(thiserror::Error, Debug)]
pub enum ClientError {
    /// Connecting failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Broker address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A read or write on an open connection failed.
    #[error("{api} request to {addr} failed: {source}")]
    Io {
        /// API name.
        api: String,
        /// Broker address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Encoding or decoding failed.
    #[error("{api} to {addr}: protocol error: {message}")]
    Protocol {
        /// API name.
        api: String,
        /// Broker address.
        addr: String,
        /// What.
        message: String,
    },
    /// The broker does not serve a version this client speaks.
    #[error(
        "broker {addr} does not support {api} in versions {min}..={max} (it serves {broker:?})"
    )]
    Unsupported {
        /// API name.
        api: String,
        /// Broker address.
        addr: String,
        /// Our lowest.
        min: i16,
        /// Our highest.
        max: i16,
        /// What the broker serves, if anything.
        broker: Option<(i16, i16)>,
    },
    /// A Kafka error code in an answer.
    #[error("{context}: {} (error code {code})", kafka_error_name(*code))]
    Kafka {
        /// What was being done.
        context: String,
        /// The code.
        code: i16,
    },
    /// Something the user asked for does not exist or makes no sense.
    #[error("{0}")]
    Usage(String),
}

/// Kafka's name for an error code.
pub fn kafka_error_name(code: i16) -> String {
    match kafka_protocol::ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?}"),
        None => format!("unknown error {code}"),
    }
}

/// Turns a non-zero error code into [`ClientError::Kafka`].
pub fn check(code: i16, context: impl FnOnce() -> String) -> Result<(), ClientError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::Kafka {
            context: context(),
            code,
        })
    }
}

fn api_name(key: i16) -> String {
    kafka_protocol::messages::ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| format!("api {key}"))
}

/// One connection to one broker.
pub struct Conn {
    stream: TcpStream,
    /// The broker's address.
    pub addr: String,
    correlation_id: i32,
    /// API key -> (min, max) version the broker serves.
    pub versions: HashMap<i16, (i16, i16)>,
}

impl Conn {
    /// Connects and learns the broker's API versions.
    pub fn connect(addr: &str) -> Result<Conn, ClientError> {
        let connect_err = |source| ClientError::Connect {
            addr: addr.to_string(),
            source,
        };
        let sockaddr = addr
            .to_socket_addrs()
            .map_err(connect_err)?
            .next()
            .ok_or_else(|| connect_err(std::io::Error::other("resolves to no address")))?;
        let stream = TcpStream::connect_timeout(&sockaddr, CONNECT_TIMEOUT).map_err(connect_err)?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .map_err(connect_err)?;
        stream
            .set_write_timeout(Some(REQUEST_TIMEOUT))
            .map_err(connect_err)?;
        let mut conn = Conn {
            stream,
            addr: addr.to_string(),
            correlation_id: 0,
            versions: HashMap::new(),
        };
        let answer = conn.send_at(&ApiVersionsRequest::default(), 0)?;
        check(answer.error_code, || format!("ApiVersions from {addr}"))?;
        conn.versions = answer
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(conn)
    }

    /// The version to use for `R`: the highest both sides speak, capped at
    /// `max_understood` (what the caller fills in and reads).
    pub fn version<R: Request>(&self, max_understood: i16) -> Result<i16, ClientError> {
        let ours = (R::VERSIONS.min.max(0), max_understood.min(R::VERSIONS.max));
        let broker = self.versions.get(&R::KEY).copied();
        match broker {
            Some((bmin, bmax)) if bmin <= ours.1 && bmax >= ours.0 => Ok(ours.1.min(bmax)),
            _ => Err(ClientError::Unsupported {
                api: api_name(R::KEY),
                addr: self.addr.clone(),
                min: ours.0,
                max: ours.1,
                broker,
            }),
        }
    }

    /// Gives up the connection's socket, for a caller that pipelines its
    /// own requests on it (the load generator); the versions learned stay
    /// valid for it.
    pub fn into_stream(self) -> (TcpStream, HashMap<i16, (i16, i16)>) {
        (self.stream, self.versions)
    }

    /// Sends `request` at the negotiated version (see [`Conn::version`]).
    pub fn send<R: Request>(
        &mut self,
        request: &R,
        max_understood: i16,
    ) -> Result<R::Response, ClientError> {
        let version = self.version::<R>(max_understood)?;
        self.send_at(request, version)
    }

    /// Sends `request` at `version` and reads its response.
    pub fn send_at<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let frame = self.encode(request, version)?;
        let (api, addr) = (api_name(R::KEY), self.addr.clone());
        let io = |source| ClientError::Io {
            api: api.clone(),
            addr: addr.clone(),
            source,
        };
        self.stream.write_all(&frame).map_err(io)?;
        let mut body = self.read_frame().map_err(io)?;
        self.decode::<R>(&mut body, version)
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub fn send_no_response<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<(), ClientError> {
        let frame = self.encode(request, version)?;
        let api = api_name(R::KEY);
        self.stream
            .write_all(&frame)
            .map_err(|source| ClientError::Io {
                api,
                addr: self.addr.clone(),
                source,
            })
    }

    fn encode<R: Request>(&mut self, request: &R, version: i16) -> Result<Bytes, ClientError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let mut frame = BytesMut::new();
        put_request(&mut frame, request, version, self.correlation_id, CLIENT_ID)
            .map_err(|message| self.protocol_err::<R>(message))?;
        Ok(frame.freeze())
    }

    fn decode<R: Request>(
        &self,
        body: &mut Bytes,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        let header = ResponseHeader::decode(body, header_version)
            .map_err(|e| self.protocol_err::<R>(format!("response header: {e}")))?;
        if header.correlation_id != self.correlation_id {
            return Err(self.protocol_err::<R>(format!(
                "correlation id {} answers a request we did not send ({})",
                header.correlation_id, self.correlation_id
            )));
        }
        R::Response::decode(body, version)
            .map_err(|e| self.protocol_err::<R>(format!("response v{version}: {e}")))
    }

    fn protocol_err<R: Request>(&self, message: String) -> ClientError {
        ClientError::Protocol {
            api: api_name(R::KEY),
            addr: self.addr.clone(),
            message,
        }
    }

    fn read_frame(&mut self) -> std::io::Result<Bytes> {
        read_frame(&mut self.stream)
    }
}

/// One size-prefixed response frame (the size checked against
/// [`RESPONSE_BYTES_MAX`]); shared with the load generator's connections.
pub fn read_frame(stream: &mut impl Read) -> std::io::Result<Bytes> {
    let mut body = vec![0u8; read_frame_size(stream)?];
    stream.read_exact(&mut body)?;
    Ok(Bytes::from(body))
}

/// Reads a frame's size prefix; refuses one over [`RESPONSE_BYTES_MAX`].
pub fn read_frame_size(stream: &mut impl Read) -> std::io::Result<usize> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > RESPONSE_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "response size {size} out of range"
        )));
    }
    Ok(size as usize)
}

/// Reads a big-endian i32 (used by the consumer-protocol decoders).
pub fn get_i32(buf: &mut Bytes) -> Option<i32> {
    (buf.remaining() >= 4).then(|| buf.get_i32())
}

/// The bootstrap connection plus connections to other brokers by node id.
pub struct Cluster {
    /// The bootstrap broker.
    pub bootstrap: Conn,
    nodes: HashMap<i32, Conn>,
    addresses: HashMap<i32, String>,
}

/// Highest Metadata version this client fills in and reads.
pub const METADATA_VERSION_MAX: i16 = 12;
/// Highest FindCoordinator version (v4 moved to batched keys).
pub const FIND_COORDINATOR_VERSION_MAX: i16 = 3;
/// FindCoordinator key type of a consumer group.
const COORDINATOR_KEY_GROUP: i8 = 0;

impl Cluster {
    /// Connects to the first reachable address of a comma-separated list.
    pub fn connect(brokers: &str) -> Result<Cluster, ClientError> {
        let mut last = None;
        for addr in brokers.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match Conn::connect(addr) {
                Ok(bootstrap) => {
                    return Ok(Cluster {
                        bootstrap,
                        nodes: HashMap::new(),
                        addresses: HashMap::new(),
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Usage("no broker address given".into())))
    }

    /// Metadata for `topics` (all topics when `None`); remembers broker addresses.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse, ClientError> {
        let mut request = MetadataRequest::default();
        request.topics = topics.map(|names| {
            names
                .iter()
                .map(|n| {
                    let mut t =
                        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
                    t.name = Some(StrBytes::from_string(n.clone()).into());
                    t
                })
                .collect()
        });
        request.allow_auto_topic_creation = false;
        let answer = self.bootstrap.send(&request, METADATA_VERSION_MAX)?;
        for b in &answer.brokers {
            self.addresses
                .insert(b.node_id.0, format!("{}:{}", b.host.as_str(), b.port));
        }
        Ok(answer)
    }

    /// The address of broker `node`, as the last Metadata answer gave it.
    pub fn address(&self, node: i32) -> Option<String> {
        self.addresses.get(&node).cloned()
    }

    /// A connection to broker `node` (learned from Metadata/FindCoordinator).
    pub fn node(&mut self, node: i32) -> Result<&mut Conn, ClientError> {
        if !self.nodes.contains_key(&node) {
            if self.addresses.is_empty() {
                self.metadata(Some(&[]))?;
            }
            let addr = self.addresses.get(&node).cloned().ok_or_else(|| {
                ClientError::Usage(format!("broker {node} is not in the metadata"))
            })?;
            // The bootstrap broker may be this node: a second connection is fine.
            let conn = Conn::connect(&addr)?;
            self.nodes.insert(node, conn);
        }
        Ok(self.nodes.get_mut(&node).expect("inserted above"))
    }

    /// The coordinator of `group`.
    pub fn coordinator(&mut self, group: &str) -> Result<&mut Conn, ClientError> {
        let mut request = FindCoordinatorRequest::default();
        request.key = StrBytes::from_string(group.to_string());
        request.key_type = COORDINATOR_KEY_GROUP;
        let answer = self
            .bootstrap
            .send(&request, FIND_COORDINATOR_VERSION_MAX)?;
        check(answer.error_code, || {
            format!("finding the coordinator of group {group:?}")
        })?;
        self.addresses.insert(
            answer.node_id.0,
            format!("{}:{}", answer.host.as_str(), answer.port),
        );
        self.node(answer.node_id.0)
    }

    /// Partition -> leader node of one topic, from Metadata.
    pub fn leaders(&mut self, topic: &str) -> Result<Vec<(i32, BrokerId)>, ClientError> {
        let md = self.metadata(Some(&[topic.to_string()]))?;
        let t = md
            .topics
            .first()
            .ok_or_else(|| ClientError::Usage(format!("topic {topic:?} not in metadata")))?;
        check(t.error_code, || format!("metadata of topic {topic:?}"))?;
        let mut out: Vec<_> = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id))
            .collect();
        out.sort_by_key(|(p, _)| *p);
        Ok(out)
    }
}

/// A request's message type, for naming it in errors.
pub fn versions_of<M: Message>() -> (i16, i16) {
    (M::VERSIONS.min, M::VERSIONS.max)
}
