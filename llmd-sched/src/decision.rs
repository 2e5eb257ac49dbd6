//! What `pick` returns.

use serde::Serialize;

use crate::framework::DecisionExplanation;

/// Header with the primary targets (`ip:port[,ip:port...]`).
pub const HEADER_DESTINATION: &str = "x-gateway-destination-endpoint";
/// Header with the remote prefill endpoint.
pub const HEADER_PREFILLER: &str = "x-prefiller-host-port";
/// Header with the encoder endpoints.
pub const HEADER_ENCODERS: &str = "x-encoder-hosts-ports";
/// Data-parallel serving: the chosen rank's `ip:port` (the target itself
/// carries the pod's primary port), for llm-d's sidecar.
pub const HEADER_DATA_PARALLEL: &str = "x-data-parallel-host-port";
/// Inbound header narrowing the candidates to a subset of addresses.
pub const HEADER_SUBSET: &str = "x-gateway-destination-endpoint-subset";
/// Inbound header whose `if-available` preference asks for conditional decode.
pub const HEADER_PREFER: &str = "prefer";

/// A chosen endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Endpoint name.
    pub name: String,
    /// `ip:port`.
    pub address: String,
}

/// A scheduling decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// Primary targets in preference order (later ones are fallbacks).
    pub targets: Vec<Target>,
    /// Remote prefill endpoint when the request is disaggregated.
    pub prefill_target: Option<Target>,
    /// Encoder endpoints when encoding is disaggregated.
    pub encode_targets: Vec<Target>,
    /// Headers the proxy must set on the upstream request.
    pub headers: Vec<(String, String)>,
    /// Headers the proxy must remove from the upstream request: a stale
    /// `x-prefiller-host-port` when no prefill ran, and any routing header
    /// the request carries (`x-prefiller-host-port`, `x-encoder-hosts-ports`,
    /// `x-data-parallel-host-port`, `x-kv-cache-source-host-port`) that
    /// this decision does not set: a client never steers the sidecar.
    pub remove_headers: Vec<String>,
    /// Headers the proxy sets on the response to the client (for example the
    /// session-affinity token naming the endpoint that served the request).
    pub response_headers: Vec<(String, String)>,
    /// The scheduling span's W3C trace context, when the request carried a
    /// valid `traceparent` (its `traceparent` is also in `headers`).
    pub trace: Option<crate::TraceContext>,
    /// Why; dereferences to the full [`crate::framework::Explanation`],
    /// built on first access.
    pub explanation: DecisionExplanation,
}

impl Decision {
    /// A header value by name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// A response header value by name.
    pub fn response_header(&self, name: &str) -> Option<&str> {
        self.response_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The first target (what llm-d calls the destination endpoint).
    pub fn primary(&self) -> Option<&Target> {
        self.targets.first()
    }
}
