//! ZMQ message framing of vLLM's KV-event publisher (vLLM SPEC §3.2) as pure
//! functions over frames the host has already received.

use std::fmt;

/// The sequence number vLLM's replay socket sends as its end marker
/// (`ff…ff`, −1 as a signed 64-bit integer).
pub const REPLAY_END_SEQ: u64 = u64::MAX;

/// A parsed topic frame. `pod`/`model` follow llm-d's `kv@<pod>@<model>`
/// convention: split at every `@`; exactly three parts give
/// `pod = part[1]`, `model = part[2]`; otherwise `pod` is the whole topic and
/// `model` is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Topic<'a> {
    /// The whole topic.
    pub topic: &'a str,
    /// Publisher (pod) identity.
    pub pod: &'a str,
    /// Model name; empty when the topic does not carry one.
    pub model: &'a str,
    /// Three parts and the first is `kv`.
    pub conforms_to_convention: bool,
}

/// A message that is not a valid vLLM KV-event message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A message must have exactly three frames (topic, sequence, payload).
    FrameCount {
        /// Frames received.
        got: usize,
    },
    /// The sequence frame must be exactly 8 bytes.
    SeqLength {
        /// Bytes received.
        got: usize,
    },
    /// The topic is not valid UTF-8.
    TopicNotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
}

impl FrameError {
    /// Stable snake-case name of the error.
    pub fn code(&self) -> &'static str {
        match self {
            FrameError::FrameCount { .. } => "frame_count",
            FrameError::SeqLength { .. } => "seq_length",
            FrameError::TopicNotUtf8 { .. } => "topic_not_utf8",
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::FrameCount { got } => {
                write!(f, "KV-event message has {got} frames, expected 3")
            }
            FrameError::SeqLength { got } => {
                write!(f, "sequence frame has {got} bytes, expected 8")
            }
            FrameError::TopicNotUtf8 { offset } => {
                write!(f, "topic frame is not valid UTF-8 (byte {offset})")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Parses frame 0.
///
/// ```
/// use llmd_kvindex::events::zmq::parse_topic;
/// let t = parse_topic(b"kv@10.0.0.7@meta-llama/Llama-3.1-8B").unwrap();
/// assert_eq!((t.pod, t.model, t.conforms_to_convention), ("10.0.0.7", "meta-llama/Llama-3.1-8B", true));
/// ```
pub fn parse_topic(frame: &[u8]) -> Result<Topic<'_>, FrameError> {
    let topic = std::str::from_utf8(frame).map_err(|e| FrameError::TopicNotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let mut parts = topic.split('@');
    let (first, second, third, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
    Ok(match (first, second, third, rest) {
        (Some(prefix), Some(pod), Some(model), None) => Topic {
            topic,
            pod,
            model,
            conforms_to_convention: prefix == "kv",
        },
        _ => Topic {
            topic,
            pod: topic,
            model: "",
            conforms_to_convention: false,
        },
    })
}

/// Parses frame 1: exactly 8 bytes, unsigned big-endian.
pub fn parse_seq(frame: &[u8]) -> Result<u64, FrameError> {
    let bytes: [u8; 8] = frame
        .try_into()
        .map_err(|_| FrameError::SeqLength { got: frame.len() })?;
    Ok(u64::from_be_bytes(bytes))
}

/// The sequence frame for `seq`.
pub fn encode_seq(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Splits a three-frame message into its topic, sequence number and payload
/// (decode the payload with [`super::decode_event_batch`]).
pub fn parse_message<'a>(frames: &[&'a [u8]]) -> Result<(Topic<'a>, u64, &'a [u8]), FrameError> {
    match frames {
        [topic, seq, payload] => Ok((parse_topic(topic)?, parse_seq(seq)?, payload)),
        _ => Err(FrameError::FrameCount { got: frames.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_needs_three_frames_and_an_8_byte_seq() {
        let seq = encode_seq(7);
        let (t, s, p) = parse_message(&[b"kv@p@m", &seq, b"\x90"]).unwrap();
        assert_eq!((t.pod, t.model, s, p), ("p", "m", 7, &b"\x90"[..]));
        assert_eq!(
            parse_message(&[b"kv@p@m", &seq]),
            Err(FrameError::FrameCount { got: 2 })
        );
        assert_eq!(parse_seq(&[0; 7]), Err(FrameError::SeqLength { got: 7 }));
        assert_eq!(parse_seq(&[0xff; 8]), Ok(REPLAY_END_SEQ));
        assert_eq!(
            parse_topic(b"kv@\xff"),
            Err(FrameError::TopicNotUtf8 { offset: 3 })
        );
    }
}
