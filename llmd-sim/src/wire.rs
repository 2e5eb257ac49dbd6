//! The path a worker's KV events take to the router: each batch is encoded
//! as the msgpack bytes vLLM publishes, framed as a ZMQ message (topic
//! `kv@<pod>@<model>`, 8-byte big-endian sequence, payload), then parsed
//! and decoded exactly as a production subscriber does.

use llmd_kvindex::events::{decode_event_batch, encode_event_batch, zmq, EventBatch, EventLayout};

/// One worker's event publisher.
#[derive(Debug, Clone)]
pub struct Publisher {
    topic: Vec<u8>,
    seq: u64,
    layout: EventLayout,
}

/// A message as a subscriber receives it, decoded.
#[derive(Debug)]
pub struct Received {
    /// The payload frame.
    pub payload: Vec<u8>,
    /// Sequence number from the second frame.
    pub seq: u64,
    /// Pod named by the topic.
    pub pod: String,
    /// The decoded batch.
    pub batch: EventBatch,
}

impl Publisher {
    /// A publisher for `pod` serving `model`, writing `layout`'s bytes.
    pub fn new(pod: &str, model: &str, layout: EventLayout) -> Self {
        Publisher {
            topic: format!("kv@{pod}@{model}").into_bytes(),
            seq: 0,
            layout,
        }
    }

    /// Publishes one batch and returns what the subscriber gets from it.
    pub fn send(&mut self, batch: &EventBatch) -> Result<Received, String> {
        let payload = encode_event_batch(batch, self.layout);
        let seq = zmq::encode_seq(self.seq);
        self.seq += 1;
        let frames: [&[u8]; 3] = [&self.topic, &seq, &payload];
        let (topic, seq, body) = zmq::parse_message(&frames).map_err(|e| e.to_string())?;
        let batch = decode_event_batch(body).map_err(|e| e.to_string())?;
        Ok(Received {
            pod: topic.pod.to_string(),
            seq,
            batch,
            payload: body.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use llmd_kvindex::events::{BlockStored, HashValue, KvEvent};

    use super::*;

    #[test]
    fn a_batch_survives_the_wire() {
        let mut p = Publisher::new("10.0.0.1:8000", "m", EventLayout::V0_33);
        let batch = EventBatch {
            ts: 1.5,
            data_parallel_rank: Some(0),
            events: vec![KvEvent::BlockStored(BlockStored {
                block_hashes: vec![HashValue::Int(7)],
                token_ids: (0..16).collect(),
                block_size: 16,
                medium: Some("GPU".into()),
                ..BlockStored::default()
            })],
            skipped_events: 0,
        };
        let r = p.send(&batch).expect("round trip");
        assert_eq!(r.batch, batch);
        assert_eq!(r.pod, "10.0.0.1:8000");
        assert_eq!(r.seq, 0);
        assert_eq!(p.send(&batch).expect("again").seq, 1);
    }
}
