//! vLLM KV-cache events: decoding, encoding, ZMQ framing and sequence
//! tracking (vLLM SPEC §3–§5).
//!
//! A host that subscribes to an engine's PUB socket passes each received
//! message through [`zmq::parse_message`], checks its sequence number with a
//! [`SeqTracker`], and decodes the payload with [`decode_event_batch`] into
//! an [`EventBatch`] for the index. [`encode_event_batch`] produces the
//! bytes a given vLLM release would publish.

mod decode;
mod encode;
mod error;
mod fields;
mod layout;
pub mod model;
pub mod msgpack;
mod msgpack_write;
pub mod seq;
pub mod zmq;

pub use decode::{decode_budget, decode_event_batch, MAX_DECODE_EXPANSION};
pub use encode::encode_event_batch;
pub use error::{DecodeError, DecodeErrorKind};
pub use layout::{EventForm, EventLayout};
pub use model::{BlockRemoved, BlockStored, EventBatch, ExtraValue, HashValue, KvEvent};
pub use seq::{SeqStatus, SeqTracker};
pub use zmq::{parse_message, parse_seq, parse_topic, FrameError, Topic};
