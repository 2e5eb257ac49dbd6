//! A small, dependency-free ZeroMQ (ZMTP 3.0 over TCP, NULL security): what
//! vLLM's KV-event transport needs, on both sides.
//!
//! Why not libzmq: linking it would make `libllmd` and the wheel depend on a
//! C library and its build; the four socket types used here fit in a few
//! hundred lines over `std::net`, with every length checked before it is
//! allocated. Interop with libzmq is tested against pyzmq publishers.

pub mod endpoint;
pub mod heartbeat;
pub mod publisher;
pub mod subscribe;
pub mod wire;

pub use endpoint::TcpEndpoint;
pub use heartbeat::Heartbeat;
pub use publisher::{Publisher, ReplayLayout};
pub use subscribe::{dial, replay, resolve_within, subscribe, ReplayEnd};
pub use wire::{ByteBudget, Connection, Limits, Message, SocketType, WireError};
