//! The data model: endpoints, requests and time.

pub mod clock;
pub mod endpoint;
pub mod openai;
pub mod request;

pub use clock::{Clock, ManualClock, SystemClock};
pub use endpoint::{
    Endpoint, EndpointMetrics, EndpointState, EndpointTag, Role, KV_BYTES_LABEL, ROLE_LABEL,
};
pub use openai::{NotRendered, OpenAiKind, OpenAiPrompt, OpenAiRequest, PromptTokenizer};
pub use request::{LoraRef, Prompt, Request, Slo};
