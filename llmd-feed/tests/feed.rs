//! The feed against publishers with vLLM's wire behaviour, on loopback:
//! both socket directions, gaps and replays, restarts, duplicates, faults.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmd_feed::zmq::{Connection, Limits, Publisher, ReplayLayout, SocketType};
use llmd_feed::{Feed, FeedError, FeedOptions, PodSpec, PodStatsSnapshot, UnrecoverableGap};
use llmd_kvindex::events::{
    encode_event_batch, BlockStored, EventBatch, EventLayout, HashValue, KvEvent,
};
use llmd_sched::{Request, Scheduler};

const CONFIG: &str = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: precise-prefix-cache-producer\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\n";

fn sched() -> Arc<Scheduler> {
    Arc::new(Scheduler::from_config_str(CONFIG).unwrap())
}

fn toks(i: u64) -> Vec<u64> {
    (0..16).map(|t| i * 1000 + t).collect()
}

/// A batch storing one block (tokens of `i`) as a chain start.
fn block(i: u64) -> Vec<u8> {
    block_of_rank(i, 0)
}

/// [`block`] as data-parallel rank `rank` publishes it.
fn block_of_rank(i: u64, rank: i64) -> Vec<u8> {
    let ev = KvEvent::BlockStored(BlockStored {
        block_hashes: vec![HashValue::Int(i as i128 + 1)],
        parent_block_hash: None,
        token_ids: toks(i),
        block_size: 16,
        ..Default::default()
    });
    let b = EventBatch {
        ts: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64(),
        data_parallel_rank: Some(rank),
        events: vec![ev],
        skipped_events: 0,
    };
    encode_event_batch(&b, EventLayout::V0_33)
}

fn opts() -> FeedOptions {
    FeedOptions {
        concurrency: 2,
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        // No test needs a replay to time out: generous, so a loaded
        // machine never turns a slow replay into a clear.
        replay_timeout: Duration::from_secs(5),
        ..FeedOptions::default()
    }
}

fn wait(what: &str, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn stats(feed: &Feed, pod: &str) -> PodStatsSnapshot {
    feed.stats()[pod].clone()
}

fn publisher(topic: &str, steps: usize, layout: ReplayLayout) -> (Publisher, String, String) {
    let mut p = Publisher::new(topic, steps);
    let ev = p.bind("tcp://127.0.0.1:0").unwrap().to_string();
    let rp = p
        .bind_replay("tcp://127.0.0.1:0", layout)
        .unwrap()
        .to_string();
    (p, ev, rp)
}

/// A new publisher (numbering from 0) bound where a killed one was: events
/// at `ev`, replay at `rp`.
fn restarted(ev: &str, rp: &str) -> Publisher {
    restarted_buffering(ev, rp, 100)
}

/// [`restarted`], its replay buffer `steps` batches long.
fn restarted_buffering(ev: &str, rp: &str, steps: usize) -> Publisher {
    let port = |e: &str| e.rsplit(':').next().unwrap().to_string();
    let mut p = Publisher::new("kv@x@m", steps);
    p.bind(&format!("tcp://127.0.0.1:{}", port(ev))).unwrap();
    p.bind_replay(
        &format!("tcp://127.0.0.1:{}", port(rp)),
        ReplayLayout::WithTopic,
    )
    .unwrap();
    p
}

fn pod(name: &str, ev: &str, rp: Option<&str>) -> PodSpec {
    let mut s = PodSpec::new(name, "127.0.0.1:9").with_events(ev);
    s.replay = rp.map(str::to_string);
    s.scrape = false;
    s
}

/// The endpoint a request for the tokens of `i` is routed to.
fn routed(s: &Scheduler, i: u64) -> String {
    let req = Request::with_tokens("r", "m", toks(i).iter().map(|&t| t as u32).collect());
    s.pick(&req).unwrap().primary().unwrap().name.clone()
}

fn subscribed(p: &Publisher) {
    wait("a subscription", || p.subscribed() > 0);
}

/// A live batch that does not decode is counted once and its number
/// consumed: the next batch is in order (no gap, no replay of the same
/// bytes counted again) and, without a replay socket, the pod keeps its
/// entries.
#[test]
fn an_undecodable_batch_is_counted_once_and_is_no_gap() {
    for with_replay in [true, false] {
        let s = sched();
        let (p, ev, rp) = publisher("kv@127.0.0.1@m", 100, ReplayLayout::WithTopic);
        let feed = Feed::new(s.clone(), opts());
        feed.add_pod(pod("a", &ev, with_replay.then_some(rp.as_str())))
            .unwrap();
        feed.start().unwrap();
        subscribed(&p);
        p.publish(&block(0));
        wait("the first batch", || stats(&feed, "a").events == 1);
        p.publish(b"\xc1garbage");
        p.publish(&block(2));
        wait("the third batch", || stats(&feed, "a").events == 2);
        let st = stats(&feed, "a");
        assert_eq!(
            (st.decode_errors, st.gaps, st.clears, st.blocks),
            (1, 0, 0, 2),
            "replay {with_replay}: {st:?}"
        );
        assert_eq!(routed(&s, 0), "a");
        let text = s.render_metrics();
        assert!(
            text.contains("llmd_kvindex_decode_errors_total{endpoint=\"a\"} 1"),
            "{text}"
        );
    }
}

/// A stopping feed starts no further replay: with a replay socket that
/// never answers, a gap's recovery (a replay and its retry) ends after the
/// replay in flight instead of waiting out both.
#[test]
fn stop_waits_for_at_most_the_replay_in_flight() {
    let s = sched();
    let (p, ev, _) = publisher("kv@127.0.0.1@m", 100, ReplayLayout::WithTopic);
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let rp = format!("tcp://{}", silent.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((c, _)) = silent.accept() {
            // A replay socket that takes the request and never answers.
            if let Ok(mut c) = Connection::handshake(
                c,
                SocketType::Router,
                Limits::default(),
                Duration::from_secs(5),
            ) {
                let _ = c.recv();
                held.push(c);
                let _ = tx.send(());
            }
        }
    });
    let feed = Feed::new(
        s,
        FeedOptions {
            replay_timeout: Duration::from_secs(3),
            catch_up: false,
            ..opts()
        },
    );
    feed.add_pod(pod("a", &ev, Some(&rp))).unwrap();
    feed.start().unwrap();
    subscribed(&p);
    p.publish_with_seq(0, &block(0));
    wait("the first batch", || stats(&feed, "a").events == 1);
    p.publish_with_seq(5, &block(5)); // a gap: replay from 1
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the replay asked");
    let t0 = Instant::now();
    feed.stop();
    // The replay in flight ends by its 3 s deadline; its retry would take
    // 3 s more.
    assert!(
        t0.elapsed() < Duration::from_millis(5500),
        "{:?}",
        t0.elapsed()
    );
}

/// Pods added while the feed starts are each subscribed once (both the
/// start and the add see such a pod; a second subscription would read its
/// first batch again as a restart).
#[test]
fn pods_added_while_the_feed_starts_are_subscribed_once() {
    let s = sched();
    let pubs: Vec<(Publisher, String, String)> = (0..24)
        .map(|_| publisher("kv@127.0.0.1@m", 10, ReplayLayout::WithTopic))
        .collect();
    let feed = Arc::new(Feed::new(s.clone(), opts()));
    let (f2, specs): (Arc<Feed>, Vec<PodSpec>) = (
        feed.clone(),
        pubs.iter()
            .enumerate()
            .map(|(i, (_, ev, _))| pod(&format!("p{i}"), ev, None))
            .collect(),
    );
    let adder = std::thread::spawn(move || {
        for spec in specs {
            f2.add_pod(spec).unwrap();
        }
    });
    feed.start().unwrap();
    adder.join().unwrap();
    for (p, _, _) in &pubs {
        subscribed(p);
    }
    std::thread::sleep(Duration::from_millis(300));
    let counts: Vec<usize> = pubs.iter().map(|(p, _, _)| p.subscribers()).collect();
    assert!(counts.iter().all(|&n| n == 1), "{counts:?}");
}

#[test]
fn connects_and_applies_in_order() {
    let s = sched();
    let (p, ev, rp) = publisher("kv@127.0.0.1@m", 100, ReplayLayout::WithTopic);
    let feed = Feed::new(s.clone(), opts());
    feed.add_pod(pod("a", &ev, Some(&rp))).unwrap();
    feed.add_pod(pod("b", "tcp://127.0.0.1:1", None)).unwrap();
    feed.start().unwrap();
    subscribed(&p);
    for i in 0..10 {
        p.publish(&block(i));
    }
    wait("10 batches", || stats(&feed, "a").events == 10);
    let st = stats(&feed, "a");
    assert_eq!(
        (st.blocks, st.gaps, st.duplicates, st.clears),
        (10, 0, 0, 0)
    );
    assert!(st.last_event_age_s.is_some());
    assert_eq!(routed(&s, 3), "a");
    wait("b's failed dial", || stats(&feed, "b").connect_failures > 0);
    let text = feed.render_metrics();
    assert!(
        text.contains("llmd_feed_event_batches_total{pod=\"a\"} 10"),
        "{text}"
    );
    assert!(text.contains("llmd_feed_event_lag_seconds_count{pod=\"a\"} 10"));
}

#[test]
fn a_gap_is_replayed_in_both_layouts() {
    for layout in [ReplayLayout::WithTopic, ReplayLayout::WithoutTopic] {
        let (s, p, feed, _, _) = following_a_with(100, layout, opts());
        for i in 0..3 {
            p.publish(&block(i));
        }
        for i in 3..6 {
            p.record_only(i, &block(i)); // lost on the way
        }
        p.publish(&block(6));
        p.publish(&block(7));
        // Batches are applied as the replay streams in; its counter moves
        // when the reply ends, and the live 6 it answered is counted a
        // duplicate after that.
        wait("8 batches, the replay and the duplicate", || {
            let st = stats(&feed, "a");
            st.events == 8 && st.replays == 1 && st.duplicates >= 1
        });
        let st = stats(&feed, "a");
        assert_eq!(
            (st.gaps, st.replays, st.clears),
            (1, 1, 0),
            "{layout:?} {st:?}"
        );
        // The replay brought 6 and 7 too; their live copies were skipped.
        assert!(st.duplicates >= 1, "{st:?}");
        assert_eq!(st.blocks, 8);
        for i in 0..8 {
            assert_eq!(routed(&s, i), "a");
        }
    }
}

#[test]
fn a_gap_the_buffer_no_longer_covers_drops_the_pods_entries() {
    let (s, p, feed, _, _) = following_a_with(2, ReplayLayout::WithTopic, opts());
    p.publish(&block(0));
    p.publish(&block(1));
    wait("2 batches", || stats(&feed, "a").events == 2);
    for i in 2..6 {
        p.record_only(i, &block(i));
    }
    p.publish(&block(6)); // the buffer holds 5 and 6 only
    wait("the replay", || stats(&feed, "a").replays_too_old == 1);
    wait("5 and 6", || stats(&feed, "a").events == 4);
    let st = stats(&feed, "a");
    assert_eq!((st.gaps, st.clears), (1, 1), "{st:?}");
    assert_eq!((st.blocks, st.replays), (4, 0), "{st:?}");
    assert_eq!(routed(&s, 6), "a");
}

#[test]
fn without_replay_a_gap_clears_or_keeps_per_the_option() {
    for (policy, clears) in [(UnrecoverableGap::Clear, 1), (UnrecoverableGap::Keep, 0)] {
        let s = sched();
        let (p, ev, _) = publisher("kv@x@m", 10, ReplayLayout::WithTopic);
        let feed = Feed::new(
            s.clone(),
            FeedOptions {
                on_unrecoverable_gap: policy,
                ..opts()
            },
        );
        feed.add_pod(pod("a", &ev, None)).unwrap();
        feed.start().unwrap();
        subscribed(&p);
        p.publish(&block(0));
        p.record_only(1, &block(1));
        p.publish(&block(2));
        wait("2 batches", || stats(&feed, "a").events == 2);
        let st = stats(&feed, "a");
        assert_eq!(
            (st.gaps, st.clears, st.replays),
            (1, clears, 0),
            "{policy:?}"
        );
    }
}

/// A started feed following pod `a` of a publisher with a replay socket
/// (topic `kv@x@m`, 100 batches buffered), subscribed: the scheduler, the
/// publisher, the feed, and the events and replay endpoints.
fn following_a() -> (Arc<Scheduler>, Publisher, Feed, String, String) {
    following_a_with(100, ReplayLayout::WithTopic, opts())
}

/// [`following_a`] with a publisher buffering `steps` batches, replying in
/// `layout`, and a feed with options `o`.
fn following_a_with(
    steps: usize,
    layout: ReplayLayout,
    o: FeedOptions,
) -> (Arc<Scheduler>, Publisher, Feed, String, String) {
    let s = sched();
    let (p, ev, rp) = publisher("kv@x@m", steps, layout);
    let feed = Feed::new(s.clone(), o);
    feed.add_pod(pod("a", &ev, Some(&rp))).unwrap();
    feed.start().unwrap();
    subscribed(&p);
    (s, p, feed, ev, rp)
}

#[test]
fn restarts_duplicates_and_a_killed_publisher() {
    let (s, mut p, feed, ev, rp) = following_a();
    p.publish(&block(0));
    p.publish(&block(1));
    p.publish_with_seq(1, &block(1)); // the same number again
    wait("2 batches", || stats(&feed, "a").events == 2);
    wait("the duplicate", || stats(&feed, "a").duplicates == 1);
    // Killed and restarted on the same ports: numbering starts over.
    p.close();
    drop(p);
    let p = restarted(&ev, &rp);
    wait("the reconnect", || stats(&feed, "a").reconnects >= 1);
    subscribed(&p);
    p.publish(&block(7));
    wait("the restart", || stats(&feed, "a").restarts == 1);
    wait("3 batches", || stats(&feed, "a").events == 3);
    assert_eq!(routed(&s, 7), "a");
}

/// A restarted publisher whose first batches are no longer buffered: the
/// pod's entries are dropped (and counted) once, not again when the replay
/// cannot reach its batch 0.
#[test]
fn a_restart_past_the_replay_buffer_clears_once() {
    let (s, mut p, feed, ev, rp) = following_a();
    for i in 0..6 {
        p.publish(&block(i));
    }
    wait("6 batches", || stats(&feed, "a").events == 6);
    p.close();
    drop(p);
    let p = restarted_buffering(&ev, &rp, 2);
    wait("the reconnect", || stats(&feed, "a").reconnects >= 1);
    subscribed(&p);
    for i in 0..3 {
        p.record_only(i, &block(10 + i));
    }
    p.publish(&block(13)); // seq 3: below the old 5, batch 0 gone
    wait("the restart", || stats(&feed, "a").restarts == 1);
    wait("the restart's replay", || {
        stats(&feed, "a").replays_too_old == 1
    });
    wait("the restart's batches", || stats(&feed, "a").events == 8);
    let st = stats(&feed, "a");
    assert_eq!((st.clears, st.replays_too_old), (1, 1), "{st:?}");
    assert_eq!(routed(&s, 13), "a");
}

/// A started feed with a bound socket (its address returned) and one pod,
/// `pod-a` at 127.0.0.5, expected to dial it.
fn bound_feed(s: &Arc<Scheduler>) -> (Feed, String) {
    let feed = Feed::new(s.clone(), opts());
    let bound = feed.bind_events("tcp://127.0.0.1:0").unwrap().to_string();
    let mut spec = PodSpec::new("pod-a", "127.0.0.5:8000");
    spec.scrape = false;
    feed.add_pod(spec).unwrap();
    feed.start().unwrap();
    (feed, bound)
}

#[test]
fn pods_that_dial_a_bound_socket_are_matched_by_topic() {
    let s = sched();
    let (feed, bound) = bound_feed(&s);
    let mut p = Publisher::new("kv@127.0.0.5@m", 10);
    p.connect(&bound).unwrap();
    let mut stranger = Publisher::new("kv@10.9.9.9@m", 10);
    stranger.connect(&bound).unwrap();
    subscribed(&p);
    subscribed(&stranger);
    for i in 0..5 {
        p.publish(&block(i));
    }
    stranger.publish(&block(99));
    wait("5 batches", || stats(&feed, "pod-a").events == 5);
    wait("the stranger", || feed.unknown_publisher_messages() == 1);
    assert_eq!(routed(&s, 2), "pod-a");
    // A dialer that does not filter on its side: a topic not subscribed to
    // is dropped on receipt (as libzmq's SUB drops it) and counted, even
    // when it names the pod.
    let mut c = Connection::handshake(
        std::net::TcpStream::connect(bound.trim_start_matches("tcp://")).unwrap(),
        SocketType::Pub,
        Limits::default(),
        Duration::from_secs(2),
    )
    .unwrap();
    let _ = c.recv(); // the subscription
    c.send(&[&b"other@127.0.0.5@m"[..], &5u64.to_be_bytes(), &block(5)])
        .unwrap();
    wait("the filtered message", || {
        feed.render_metrics()
            .contains("llmd_feed_topic_filtered_messages_total 1")
    });
    assert_eq!(stats(&feed, "pod-a").events, 5);
}

/// Two followed pods on one host (host networking, several engines on a
/// machine): a topic naming only the host is neither pod's; it is counted
/// as from an unknown publisher, not given to the first pod by name. A
/// topic naming a pod keeps working.
#[test]
fn a_host_two_pods_share_names_neither() {
    let s = sched();
    let (feed, bound) = bound_feed(&s);
    let mut spec = PodSpec::new("pod-b", "127.0.0.5:8001");
    spec.scrape = false;
    feed.add_pod(spec).unwrap();
    let mut by_host = Publisher::new("kv@127.0.0.5@m", 10);
    by_host.connect(&bound).unwrap();
    let mut by_name = Publisher::new("kv@pod-b@m", 10);
    by_name.connect(&bound).unwrap();
    subscribed(&by_host);
    subscribed(&by_name);
    by_host.publish(&block(1));
    for i in 0..3 {
        by_name.publish(&block(10 + i));
    }
    wait("3 batches for pod-b", || stats(&feed, "pod-b").events == 3);
    wait("the ambiguous one", || {
        feed.unknown_publisher_messages() == 1
    });
    assert_eq!(stats(&feed, "pod-a").events, 0);
}

/// On a bound socket too, an undecodable batch of a pod with one stream
/// consumes its number: the next batch is no gap (no clear, no second
/// count).
#[test]
fn an_undecodable_batch_on_a_bound_socket_is_no_gap() {
    let s = sched();
    let (feed, bound) = bound_feed(&s);
    let mut p = Publisher::new("kv@127.0.0.5@m", 10);
    p.connect(&bound).unwrap();
    subscribed(&p);
    p.publish(&block(0));
    wait("the first batch", || stats(&feed, "pod-a").events == 1);
    p.publish(b"\xc1garbage");
    p.publish(&block(2));
    wait("the third batch", || stats(&feed, "pod-a").events == 2);
    let st = stats(&feed, "pod-a");
    assert_eq!(
        (st.decode_errors, st.gaps, st.clears, st.blocks),
        (1, 0, 0, 2),
        "{st:?}"
    );
}

#[test]
fn malformed_frames_and_payloads_are_counted_not_fatal() {
    let s = sched();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ev = format!("tcp://{}", l.local_addr().unwrap());
    let feed = Feed::new(s.clone(), opts());
    feed.add_pod(pod("a", &ev, None)).unwrap();
    feed.start().unwrap();
    let (stream, _) = l.accept().unwrap();
    let mut c = Connection::handshake(
        stream,
        SocketType::Pub,
        Limits::default(),
        Duration::from_secs(2),
    )
    .unwrap();
    let _ = c.recv(); // the subscription
    c.send(&[&b"kv@x@m"[..], &[0u8; 8]]).unwrap(); // two frames
    c.send(&[&b"kv@x@m"[..], &[0u8; 9], b"x"]).unwrap(); // 9-byte seq
    c.send(&[&b"kv@\xff\xfe"[..], &0u64.to_be_bytes(), b"x"])
        .unwrap(); // bad topic (subscribed prefix, not UTF-8)
    c.send(&[&b"other@x@m"[..], &0u64.to_be_bytes(), &block(7)])
        .unwrap(); // a topic not subscribed to: dropped on receipt
    c.send(&[&b"kv@x@m"[..], &0u64.to_be_bytes(), b"\xc1garbage"])
        .unwrap(); // bad payload
    c.send(&[&b"kv@x@m"[..], &1u64.to_be_bytes(), &block(1)])
        .unwrap();
    wait("the good batch", || stats(&feed, "a").events == 1);
    let st = stats(&feed, "a");
    assert_eq!((st.malformed, st.decode_errors), (3, 1), "{st:?}");
    assert!(
        feed.render_metrics()
            .contains("llmd_feed_topic_filtered_messages_total 1"),
        "{}",
        feed.render_metrics()
    );
    // A frame claiming 2^62 bytes closes the connection, and the feed redials.
    let mut w = c.stream().unwrap();
    w.write_all(&[0x02]).unwrap();
    w.write_all(&(1u64 << 62).to_be_bytes()).unwrap();
    let (mut again, _) = l.accept().unwrap();
    assert_eq!(stats(&feed, "a").malformed, 4);
    let mut sig = [0u8; 10];
    again.read_exact(&mut sig).unwrap();
    assert_eq!((sig[0], sig[9]), (0xff, 0x7f));
}

#[test]
fn a_removed_pod_is_never_routed_to_even_while_its_events_arrive() {
    let s = sched();
    let (pa, eva, _) = publisher("kv@x@m", 10, ReplayLayout::WithTopic);
    let (pb, evb, _) = publisher("kv@y@m", 10, ReplayLayout::WithTopic);
    let feed = Feed::new(s.clone(), opts());
    feed.add_pod(pod("a", &eva, None)).unwrap();
    feed.add_pod(pod("b", &evb, None)).unwrap();
    feed.start().unwrap();
    subscribed(&pa);
    subscribed(&pb);
    pb.publish(&block(50));
    wait("b's batch", || stats(&feed, "b").events == 1);
    let pump = std::thread::spawn(move || {
        for i in 0..300 {
            pa.publish(&block(i % 20));
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    wait("a's batches", || stats(&feed, "a").events > 5);
    feed.remove_pod("a").unwrap();
    for i in 0..200 {
        assert_eq!(routed(&s, i % 20), "b");
    }
    pump.join().unwrap();
    assert!(!feed.pods().contains(&"a".to_string()));
    assert_eq!(s.endpoint_names(), vec!["b".to_string()]);
}

/// An HTTP server answering every GET with `body`, or never when `hang`.
fn metrics_server(body: &'static str, hang: bool) -> String {
    let delay = if hang {
        Duration::from_secs(30)
    } else {
        Duration::ZERO
    };
    metrics_server_after(body, delay, Arc::default())
}

/// A `/metrics` server that answers `body` `delay` after each request,
/// counting the requests in `asked`; a delay of 30 s or more never answers.
fn metrics_server_after(
    body: &'static str,
    delay: Duration,
    asked: Arc<std::sync::atomic::AtomicUsize>,
) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let asked = asked.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(delay);
                if delay >= Duration::from_secs(30) {
                    return;
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

/// A scrape of a removed pod that answers late does not reach the pod
/// re-added under its name (a changed address in an endpoint file).
#[test]
fn a_removed_pods_late_scrape_does_not_reach_its_successor() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let s = sched();
    let asked = Arc::new(AtomicUsize::new(0));
    let old = metrics_server_after(
        "vllm:num_requests_waiting{model_name=\"m\"} 99\n",
        Duration::from_millis(600),
        asked.clone(),
    );
    let new = metrics_server("vllm:num_requests_waiting{model_name=\"m\"} 5\n", false);
    let feed = Feed::new(
        s.clone(),
        FeedOptions {
            // One scrape per pod: the first, at start or when added.
            scrape_interval: Duration::from_secs(3600),
            scrape_timeout: Duration::from_secs(5),
            ..opts()
        },
    );
    feed.add_pod(PodSpec::new("p", old)).unwrap();
    feed.start().unwrap();
    wait("the old pod's scrape", || asked.load(Ordering::SeqCst) == 1);
    feed.remove_pod("p").unwrap();
    feed.add_pod(PodSpec::new("p", new)).unwrap();
    wait("the new pod's scrape", || stats(&feed, "p").scrapes == 1);
    assert_eq!(s.endpoint_state("p").unwrap().waiting_queue_size(), 5);
    // The old answer comes now, to a thread whose pod is gone.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(s.endpoint_state("p").unwrap().waiting_queue_size(), 5);
    assert_eq!(stats(&feed, "p").scrapes, 1);
}

/// Options that scrape every 20 ms, mark a pod down after two failures and
/// evict it `remove_after` later.
fn evicting(remove_after: Duration) -> FeedOptions {
    FeedOptions {
        scrape_interval: Duration::from_millis(20),
        // Far above a loopback scrape on a loaded machine (a good pod must
        // see no error), far below a hung pod's 30 s.
        scrape_timeout: Duration::from_secs(2),
        down_after_failures: 2,
        remove_after,
        ..opts()
    }
}

#[test]
fn scrapes_metrics_and_evicts_a_pod_that_hangs() {
    let s = sched();
    let good = metrics_server(
        "vllm:num_requests_waiting{model_name=\"m\"} 7\nvllm:num_requests_running{model_name=\"m\"} 2\nvllm:kv_cache_usage_perc{model_name=\"m\"} 0.25\nvllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"1000\"} 1\n",
        false,
    );
    let hung = metrics_server("", true);
    let feed = Feed::new(s.clone(), evicting(Duration::from_secs(1)));
    feed.add_pod(PodSpec::new("good", good.clone())).unwrap();
    feed.add_pod(PodSpec::new("hung", hung)).unwrap();
    feed.start().unwrap();
    wait("a scrape", || stats(&feed, "good").scrapes >= 2);
    let ep = s.endpoint_state("good").unwrap();
    assert_eq!(
        (ep.waiting_queue_size(), ep.running_requests_size()),
        (7, 2)
    );
    assert_eq!((ep.cache_block_size(), ep.cache_num_blocks()), (16, 1000));
    wait("the hung pod down", || !stats(&feed, "hung").up);
    wait("the eviction", || stats(&feed, "hung").evictions == 1);
    assert!(!stats(&feed, "hung").registered);
    assert_eq!(s.endpoint_names(), vec!["good".to_string()]);
    let text = feed.render_metrics();
    assert!(text.contains("llmd_feed_pod_up{pod=\"hung\"} 0"), "{text}");
    assert!(text.contains("llmd_feed_evictions_total{pod=\"hung\"} 1"));
    assert!(stats(&feed, "good").up && stats(&feed, "good").scrape_errors == 0);
}

/// A pod answering 200 with a page that is not vLLM's metrics is evicted
/// once and stays out: an answer counts as a sign of life only when it
/// parses (else the pod would be re-added, fail and be evicted again every
/// `remove_after`, its index entries dropped each time).
#[test]
fn a_pod_whose_page_does_not_parse_stays_evicted() {
    let s = sched();
    let bad = metrics_server("hello_world 1\n", false);
    let feed = Feed::new(s.clone(), evicting(Duration::from_millis(200)));
    feed.add_pod(PodSpec::new("bad", bad)).unwrap();
    feed.start().unwrap();
    wait("the eviction", || stats(&feed, "bad").evictions == 1);
    std::thread::sleep(Duration::from_millis(1000));
    let p = stats(&feed, "bad");
    assert_eq!((p.evictions, p.registered, p.up), (1, false, false));
    assert!(p.scrape_errors >= 10 && p.scrapes == 0, "{p:?}");
    assert!(s.endpoint_names().is_empty());
}

/// An evicted pod that answers again while the scheduler cannot take it
/// (the prefix index's one endpoint slot taken meanwhile) is counted as a
/// registration failure, not as failing scrapes, and is registered once a
/// slot frees.
#[test]
fn a_pod_that_cannot_be_registered_again_is_counted_apart() {
    let yaml = CONFIG.replace(
        "- type: precise-prefix-cache-producer\n",
        "- type: precise-prefix-cache-producer\n  parameters: {maxEndpoints: 1}\n",
    );
    let s = Arc::new(Scheduler::from_config_str(&yaml).unwrap());
    let good = Arc::new(AtomicBool::new(false));
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let answers_good = good.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let body = if answers_good.load(Ordering::SeqCst) {
                "vllm:num_requests_waiting{model_name=\"m\"} 3\n"
            } else {
                "hello_world 1\n"
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let feed = Feed::new(s.clone(), evicting(Duration::from_millis(200)));
    feed.add_pod(PodSpec::new("a", addr.clone())).unwrap();
    feed.start().unwrap();
    wait("the eviction", || stats(&feed, "a").evictions == 1);
    s.add_endpoint(llmd_sched::Endpoint::new("other", "10.0.0.9:8000"))
        .unwrap();
    let errors = stats(&feed, "a").scrape_errors;
    good.store(true, Ordering::SeqCst);
    wait("refused registrations", || {
        stats(&feed, "a").registration_failures >= 2
    });
    let p = stats(&feed, "a");
    assert!(!p.registered && p.up, "{p:?}");
    // A refused registration is neither a scrape error (at most the one in
    // flight when the page changed) nor a scrape whose metrics arrived.
    assert!(p.scrape_errors <= errors + 1, "{p:?} after {errors}");
    assert_eq!(p.scrapes, 0, "{p:?}");
    assert_eq!(s.endpoint_names(), vec!["other".to_string()]);
    let text = feed.render_metrics();
    let line = text
        .lines()
        .find(|l| l.starts_with("llmd_feed_registration_failures_total{pod=\"a\"}"))
        .unwrap();
    assert_ne!(line.rsplit(' ').next(), Some("0"), "{line}");
    s.remove_endpoint("other").unwrap();
    wait("the registration", || stats(&feed, "a").registered);
    wait("its metrics", || {
        s.endpoint_state("a")
            .is_ok_and(|e| e.waiting_queue_size() == 3)
    });
}

/// A data source asking for https (which the feed does not speak) turns
/// scraping off, reported: scraping over http would fail and evict every pod.
#[test]
fn an_https_data_source_is_not_scraped_over_http() {
    let yaml = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: max-score-picker\n- type: metrics-data-source\n  parameters: {scheme: https}\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: max-score-picker\ndataLayer:\n  sources:\n  - pluginRef: metrics-data-source\n";
    let s = Arc::new(Scheduler::from_config_str(yaml).unwrap());
    let feed = Feed::from_scheduler(s.clone()).unwrap();
    let scheme = feed
        .settings()
        .iter()
        .find(|x| x.setting == "scheme")
        .unwrap();
    assert!(
        !scheme.executed && scheme.note.contains("not scraped"),
        "{scheme:?}"
    );
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = metrics_server_after(
        "vllm:num_requests_waiting{model_name=\"m\"} 1\n",
        Duration::ZERO,
        asked.clone(),
    );
    feed.add_pod(PodSpec::new("p", server.clone())).unwrap();
    // One given its own metrics URL is still scraped there.
    let mut own = PodSpec::new("q", "127.0.0.1:9");
    own.metrics_url = Some(format!("http://{server}/metrics"));
    feed.add_pod(own).unwrap();
    feed.start().unwrap();
    wait("q's scrape", || stats(&feed, "q").scrapes > 0);
    std::thread::sleep(Duration::from_millis(200));
    let p = stats(&feed, "p");
    assert_eq!((p.scrapes, p.scrape_errors, p.registered), (0, 0, true));
}

/// A metrics path without its leading '/' is refused when the feed is
/// built, rather than accepted and turned into URLs whose scrapes fail
/// (and evict every pod); a pod metrics URL with a bad port likewise at
/// `add_pod`.
#[test]
fn a_metrics_path_or_url_that_cannot_be_scraped_is_refused() {
    let yaml = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: max-score-picker\n- type: metrics-data-source\n  parameters: {path: metrics}\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: max-score-picker\ndataLayer:\n  sources:\n  - pluginRef: metrics-data-source\n";
    let s = Arc::new(Scheduler::from_config_str(yaml).unwrap());
    let e = Feed::from_scheduler(s).unwrap_err().to_string();
    assert!(e.contains("must start with '/'"), "{e}");
    let feed = Feed::new(
        Arc::new(Scheduler::from_config_str("").unwrap()),
        FeedOptions::default(),
    );
    let pod = PodSpec {
        metrics_url: Some("http://10.0.0.7:8000metrics".into()),
        ..PodSpec::new("p", "10.0.0.7:8000")
    };
    let e = feed.add_pod(pod).unwrap_err().to_string();
    assert!(e.contains("port"), "{e}");
    feed.stop();
}

#[test]
fn an_llm_d_precise_config_is_executed_and_reported() {
    let yaml = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: precise-prefix-cache-producer\n  parameters:\n    kvEventsConfig:\n      topicFilter: 'kv@'\n      concurrency: 3\n      discoverPods: true\n      podDiscoveryConfig: {socketPort: 5557, replaySocketPort: 5558, podLabelSelector: 'app=vllm'}\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n- type: max-score-picker\n- type: metrics-data-source\n  parameters: {path: /m, interval: 10ms}\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\ndataLayer:\n  sources:\n  - pluginRef: metrics-data-source\n";
    let s = Arc::new(Scheduler::from_config_str(yaml).unwrap());
    let feed = Feed::from_scheduler(s).unwrap();
    let o = feed.options();
    assert_eq!(
        (
            o.concurrency,
            o.discover_events_port,
            o.discover_replay_port
        ),
        (3, Some(5557), Some(5558))
    );
    assert_eq!(o.metrics_path, "/m");
    assert_eq!(
        o.scrape_interval,
        Duration::from_millis(50),
        "clamped to llm-d's 50 ms tick"
    );
    let not: Vec<&str> = feed
        .settings()
        .iter()
        .filter(|x| !x.executed)
        .map(|x| x.setting.as_str())
        .collect();
    assert_eq!(
        not,
        vec!["kvEventsConfig.podDiscoveryConfig.podLabelSelector"]
    );
    feed.add_pod(PodSpec::new("p", "10.1.2.3:8000")).unwrap();
    let _ = &feed;
}

/// With two precise producers the feed (one for both) follows the first
/// one's kvEventsConfig; the second's settings that differ are reported
/// not executed instead of silently replacing the first's.
#[test]
fn a_second_producers_differing_kv_events_settings_are_not_executed() {
    let yaml = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: precise-prefix-cache-producer\n  name: a\n  parameters:\n    kvEventsConfig:\n      topicFilter: 'kv@a'\n      podDiscoveryConfig: {socketPort: 6000}\n- type: precise-prefix-cache-producer\n  name: b\n  parameters:\n    kvEventsConfig:\n      zmqEndpoint: 'tcp://127.0.0.1:0'\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: a}\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\n";
    let s = Arc::new(Scheduler::from_config_str(yaml).unwrap());
    let feed = Feed::from_scheduler(s).unwrap();
    let o = feed.options();
    assert_eq!(o.topics, ["kv@a"]);
    assert_eq!((o.concurrency, o.discover_events_port), (4, Some(6000)));
    let of = |plugin: &str, executed: bool| -> Vec<String> {
        feed.settings()
            .iter()
            .filter(|x| x.plugin == plugin && x.executed == executed)
            .map(|x| x.setting.clone())
            .collect()
    };
    assert_eq!(
        of("b", false),
        ["kvEventsConfig.topicFilter", "kvEventsConfig.discoverPods"]
    );
    // Agreeing settings are executed; endpoints to bind add up.
    assert_eq!(
        of("b", true),
        ["kvEventsConfig.concurrency", "kvEventsConfig.zmqEndpoint"]
    );
    assert!(of("a", false).is_empty());
    assert_eq!(feed.bound_endpoints().len(), 1);
    let note = &feed
        .settings()
        .iter()
        .find(|x| x.plugin == "b" && !x.executed)
        .unwrap()
        .note;
    assert!(note.contains("follows the kvEventsConfig of 'a'"), "{note}");
}

/// A second producer that turns per-pod subscription off is reported not
/// executed (the first's subscription stands), and an endpoint both
/// producers name is bound once, not twice (which would fail the feed).
#[test]
fn a_second_producer_turning_discovery_off_or_sharing_an_endpoint() {
    let yaml = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: precise-prefix-cache-producer\n  name: a\n  parameters:\n    kvEventsConfig:\n      zmqEndpoint: 'tcp://127.0.0.1:0'\n- type: precise-prefix-cache-producer\n  name: b\n  parameters:\n    kvEventsConfig:\n      discoverPods: false\n      zmqEndpoint: 'tcp://127.0.0.1:0'\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: a}\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\n";
    let s = Arc::new(Scheduler::from_config_str(yaml).unwrap());
    let feed = Feed::from_scheduler(s).unwrap();
    assert_eq!(feed.options().discover_events_port, Some(5557));
    let not: Vec<&str> = feed
        .settings()
        .iter()
        .filter(|x| x.plugin == "b" && !x.executed)
        .map(|x| x.setting.as_str())
        .collect();
    assert_eq!(not, ["kvEventsConfig.discoverPods"]);
    assert_eq!(feed.bound_endpoints().len(), 1);
}

#[test]
fn a_full_queue_drops_are_counted_and_healed_by_replay() {
    full_queue_case(FeedOptions {
        concurrency: 1,
        queue_capacity: 1,
        ..opts()
    });
}

/// The same with the queue bounded in bytes (one batch's worth) rather than
/// in messages.
#[test]
fn a_queue_over_its_byte_bound_drops_and_heals_alike() {
    full_queue_case(FeedOptions {
        concurrency: 1,
        queue_max_bytes: 1,
        ..opts()
    });
}

fn full_queue_case(options: FeedOptions) {
    let (_s, p, feed, _, _) = following_a_with(10_000, ReplayLayout::WithTopic, options);
    // A burst overruns a one-batch queue unless the worker happens to keep
    // pace with the publisher: burst again (the buffer holds 10,000) until
    // one has overrun it, each burst healed in full before the next.
    let mut sent = 0;
    for _burst in 0..5 {
        for i in 0..2000 {
            p.publish(&block(i % 500));
        }
        sent += 2000;
        // A replay's outcome is counted after the batches it applied.
        let t0 = Instant::now();
        loop {
            let st = stats(&feed, "a");
            if st.events == sent && (st.queue_drops == 0 || st.replays > 0) {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "{st:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        if stats(&feed, "a").queue_drops > 0 {
            break;
        }
    }
    let st = stats(&feed, "a");
    assert!(st.queue_drops > 0, "{st:?}");
    assert!(st.replays > 0, "{st:?}");
    // No queued batch of an earlier replay's window reads as a restart.
    assert_eq!(
        (st.clears, st.replays_failed, st.restarts),
        (0, 0, 0),
        "{st:?}"
    );
}

#[test]
fn inline_ingest_applies_and_replays_on_the_receiving_thread() {
    let inline = FeedOptions {
        concurrency: 0,
        ..opts()
    };
    let (s, p, feed, _, _) = following_a_with(100, ReplayLayout::WithTopic, inline);
    for i in 0..3 {
        p.publish(&block(i));
    }
    p.record_only(3, &block(3));
    p.publish(&block(4));
    wait("5 batches and the replay", || {
        let st = stats(&feed, "a");
        st.events == 5 && st.replays == 1
    });
    let st = stats(&feed, "a");
    assert_eq!((st.gaps, st.replays, st.queue_drops), (1, 1, 0), "{st:?}");
    assert_eq!(routed(&s, 3), "a");
}

#[test]
fn batches_before_start_are_counted_not_applied() {
    let s = sched();
    let feed = Feed::new(s.clone(), opts());
    let bound = feed.bind_events("tcp://127.0.0.1:0").unwrap();
    let mut spec = PodSpec::new("pod-a", "127.0.0.5:8000");
    spec.scrape = false;
    feed.add_pod(spec).unwrap();
    let mut p = Publisher::new("kv@127.0.0.5@m", 10);
    p.connect(&bound.to_string()).unwrap();
    subscribed(&p);
    p.publish(&block(0));
    wait("the early batch", || stats(&feed, "pod-a").not_applied == 1);
    assert_eq!(stats(&feed, "pod-a").events, 0);
    feed.start().unwrap();
    p.publish(&block(1));
    wait("the batch after start", || {
        stats(&feed, "pod-a").events == 1
    });
}

/// A "publisher" that answers every connection with a broken greeting and
/// keeps its end open until the feed closes its own: each failed attempt's
/// socket must be closed by the feed. Before, the feed kept a clone of each
/// socket (for `stop`) until the pod was removed: one descriptor and one
/// half-dead connection per attempt.
#[test]
fn failed_connections_are_closed_by_the_feed() {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (accepted, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, c) = (accepted.clone(), closed.clone());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            a.fetch_add(1, Relaxed);
            let c = c.clone();
            std::thread::spawn(move || {
                let _ = conn.write_all(&[0x55; 64]);
                let mut buf = [0u8; 256];
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
                c.fetch_add(1, Relaxed);
            });
        }
    });
    let feed = Feed::new(
        sched(),
        FeedOptions {
            reconnect_min: Duration::from_millis(1),
            reconnect_max: Duration::from_millis(2),
            ..opts()
        },
    );
    feed.add_pod(pod("broken", &format!("tcp://{addr}"), None))
        .unwrap();
    feed.start().unwrap();
    wait("50 attempts", || accepted.load(Relaxed) >= 50);
    // Every attempt but the one in flight was closed by the feed.
    wait("the feed to close them", || {
        closed.load(Relaxed) + 1 >= accepted.load(Relaxed)
    });
    assert!(stats(&feed, "broken").malformed >= 49);
    feed.stop();
}

/// A started feed with heartbeats every `interval` and one pod, `a`, whose
/// events it dials at the returned listener (the test plays the pod).
fn feed_dialing_a_listener(interval: Duration) -> (Feed, TcpListener) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ev = format!("tcp://{}", l.local_addr().unwrap());
    let feed = Feed::new(
        sched(),
        FeedOptions {
            heartbeat_interval: Some(interval),
            // Room for the test thread's handshake on a loaded machine.
            connect_timeout: Duration::from_secs(5),
            ..opts()
        },
    );
    feed.add_pod(pod("a", &ev, None)).unwrap();
    feed.start().unwrap();
    (feed, l)
}

/// A publisher gone without closing its connection (it reads nothing more,
/// so it answers no `PING`) is found by the heartbeat within two intervals:
/// the connection is closed, counted, and dialed again.
#[test]
fn a_publisher_gone_silent_is_found_by_the_heartbeat() {
    let (feed, l) = feed_dialing_a_listener(Duration::from_millis(100));
    let (stream, _) = l.accept().unwrap();
    let mut c = Connection::handshake(
        stream,
        SocketType::Pub,
        Limits::default(),
        Duration::from_secs(5),
    )
    .unwrap();
    let _ = c.recv(); // the subscription; then silence, the socket held open
    let (_again, _) = l.accept().unwrap(); // the feed dials again
    wait("the count", || stats(&feed, "a").heartbeat_timeouts == 1);
    let text = feed.render_metrics();
    assert!(
        text.contains("llmd_feed_heartbeat_timeouts_total{pod=\"a\"} 1"),
        "{text}"
    );
    drop(c);
    feed.stop();
}

/// A peer that greets with ZMTP 3.0, where `PING` is not defined, is never
/// sent one; its connection waits quietly, and is closed once it has been
/// silent for 30 intervals.
#[test]
fn a_zmtp_3_0_peer_is_never_pinged() {
    let (feed, l) = feed_dialing_a_listener(Duration::from_millis(100));
    let (mut s, _) = l.accept().unwrap();
    let mut greeting = [0u8; 64];
    greeting[0] = 0xFF;
    greeting[9] = 0x7F;
    greeting[10] = 3; // 3.0
    greeting[12..16].copy_from_slice(b"NULL");
    s.write_all(&greeting).unwrap();
    let ready = b"\x05READY\x0bSocket-Type\x00\x00\x00\x03PUB";
    s.write_all(&[0x04, ready.len() as u8]).unwrap();
    s.write_all(ready).unwrap();
    // The feed's greeting, READY and subscription, then nothing at all.
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(1) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    assert!(!seen.windows(4).any(|w| w == b"PING"), "{seen:?}");
    let st = stats(&feed, "a");
    assert_eq!((st.heartbeat_timeouts, st.reconnects), (0, 0), "{st:?}");
    // 30 intervals (3 s) of silence: closed, counted, dialed again.
    wait("the silent peer dropped", || {
        stats(&feed, "a").heartbeat_timeouts == 1
    });
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert!(
        matches!(s.read(&mut buf), Ok(0)),
        "the connection stays open"
    );
    let _ = l.accept().unwrap();
    feed.stop();
}

/// An idle publisher that is alive answers every `PING`, so its connection
/// is kept through many quiet intervals and its next batch arrives on it.
#[test]
fn an_idle_live_publisher_keeps_its_connection() {
    let (p, ev, _) = publisher("kv@x@m", 10, ReplayLayout::WithTopic);
    let feed = Feed::new(
        sched(),
        FeedOptions {
            // A PONG later than an interval would read as a dead peer: far
            // longer than a loaded machine delays a thread.
            heartbeat_interval: Some(Duration::from_secs(1)),
            ..opts()
        },
    );
    feed.add_pod(pod("a", &ev, None)).unwrap();
    feed.start().unwrap();
    subscribed(&p);
    std::thread::sleep(Duration::from_millis(3500)); // three PINGs answered
    p.publish(&block(1));
    wait("the batch", || stats(&feed, "a").events == 1);
    let st = stats(&feed, "a");
    assert_eq!((st.heartbeat_timeouts, st.reconnects), (0, 0), "{st:?}");
    feed.stop();
}

/// A bound socket serves at most `max_bound_connections` at once; the rest
/// are refused and counted, and a connection that ends frees its place.
#[test]
fn a_bound_socket_refuses_connections_over_its_limit() {
    let feed = Feed::new(
        sched(),
        FeedOptions {
            max_bound_connections: 2,
            // The idle connections below hold their places until dropped.
            connect_timeout: Duration::from_secs(5),
            ..opts()
        },
    );
    let bound = feed.bind_events("tcp://127.0.0.1:0").unwrap().to_string();
    feed.start().unwrap();
    let addr = bound.trim_start_matches("tcp://").to_string();
    let refused = |f: &Feed| {
        f.render_metrics().lines().find_map(|l| {
            l.strip_prefix("llmd_feed_bound_refused_total ")
                .map(str::to_string)
        })
    };
    let idle: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Shut at once: end of stream (or a reset) without a greeting.
    let mut buf = [0u8; 64];
    assert!(!matches!(third.read(&mut buf), Ok(n) if n > 0));
    wait("the refusal", || refused(&feed).as_deref() == Some("1"));
    drop(idle);
    // Room again once the idle connections are gone (the publisher retries
    // if it comes before their threads have ended).
    let mut p = Publisher::new("kv@127.0.0.5@m", 10);
    p.connect(&bound).unwrap();
    subscribed(&p);
    feed.stop();
}

/// A pod caught up from its replay buffer on first contact, then restarted
/// before publishing again: the new incarnation's first batches are a
/// restart, not duplicates of what the catch-up replayed.
#[test]
fn a_restart_after_a_catch_up_is_not_taken_for_duplicates() {
    let s = sched();
    let (p, ev, rp) = publisher("kv@x@m", 100, ReplayLayout::WithTopic);
    for i in 0..5 {
        p.publish(&block(i)); // before anyone subscribed: only in the buffer
    }
    let feed = Feed::new(s.clone(), opts());
    feed.add_pod(pod("a", &ev, Some(&rp))).unwrap();
    feed.start().unwrap();
    subscribed(&p);
    p.publish(&block(5));
    // The live 5 asks for the catch-up; the replay brings 0..=5 (the
    // publisher buffers a batch before it sends it), so the live 5 is then a
    // duplicate. Both counters move on the receiving thread one after the
    // other: wait for both, not for the first alone.
    wait("the catch-up", || {
        let st = stats(&feed, "a");
        st.events == 6 && st.duplicates == 1
    });
    let dups = 1;
    drop(p);
    let p = restarted(&ev, &rp);
    wait("the reconnect", || stats(&feed, "a").reconnects >= 1);
    subscribed(&p);
    p.publish(&block(7)); // seq 0 of the new incarnation
    wait("the restart", || stats(&feed, "a").restarts == 1);
    wait("7 batches", || stats(&feed, "a").events == 7);
    assert_eq!(stats(&feed, "a").duplicates, dups);
    assert_eq!(routed(&s, 7), "a");
}

/// On a bound socket the rank comes from the payload: a negative rank, or
/// more ranks than the scheduler tracks per endpoint, is refused and counted
/// as malformed instead of growing the pod's state.
#[test]
fn payload_ranks_on_a_bound_socket_are_bounded() {
    let (feed, bound) = bound_feed(&sched());
    let mut p = Publisher::new("kv@127.0.0.5@m", 10);
    p.connect(&bound).unwrap();
    subscribed(&p);
    p.publish(&block_of_rank(1, -3));
    wait("the refusal", || stats(&feed, "pod-a").malformed == 1);
    let max = llmd_kvindex::events::seq::MAX_RANKS_PER_ENDPOINT as i64;
    for r in 0..max + 5 {
        p.publish_with_seq(0, &block_of_rank(r as u64, r));
    }
    wait("every rank", || {
        let st = stats(&feed, "pod-a");
        st.events + st.malformed == max as u64 + 6
    });
    let st = stats(&feed, "pod-a");
    assert_eq!((st.events, st.malformed), (max as u64, 6), "{st:?}");
}

/// A stopped feed cannot start again, so what it is given would never be
/// followed: pods, syncs, discovery sources and bound sockets are refused,
/// and no pod is registered in the scheduler.
#[test]
fn a_stopped_feed_refuses_what_it_would_never_follow() {
    let s = sched();
    let feed = Feed::new(s.clone(), opts());
    feed.start().unwrap();
    feed.stop();
    let refused = |r: Result<(), llmd_feed::FeedError>| {
        let e = r.expect_err("refused");
        assert!(matches!(e, llmd_feed::FeedError::Config(_)), "{e}");
        assert!(e.to_string().contains("stopped"), "{e}");
    };
    refused(feed.add_pod(pod("a", "tcp://127.0.0.1:9", None)));
    refused(feed.sync_pods(vec![pod("b", "tcp://127.0.0.1:9", None)]));
    refused(feed.bind_events("tcp://127.0.0.1:0").map(|_| ()));
    refused(feed.add_discovery(llmd_feed::Discovery::Dns {
        host: "localhost".into(),
        port: 8000,
        interval: std::time::Duration::from_secs(1),
    }));
    assert!(s.endpoint_names().is_empty());
    assert!(feed.pods().is_empty());
}

/// Values the config loader accepts in their other forms are executed the
/// same: whole numbers written as floats (`5558.0`), a scrape interval in
/// seconds (`interval: 2`). (A port out of range never gets here: the
/// loader refuses it, and the feed would too.)
#[test]
fn numbers_in_the_loaders_other_forms_are_executed() {
    let cfg = |pd: &str, interval: &str| {
        format!("apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: precise-prefix-cache-producer\n  parameters:\n    kvEventsConfig:\n      concurrency: 3.5\n      podDiscoveryConfig: {pd}\n- type: prefix-cache-scorer\n  parameters: {{prefixMatchInfoProducerName: precise-prefix-cache-producer}}\n- type: max-score-picker\n- type: metrics-data-source\n  parameters: {{port: 9090.0, interval: {interval}}}\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\ndataLayer:\n  sources:\n  - pluginRef: metrics-data-source\n")
    };
    let yaml = cfg("{socketPort: 5557.0, replaySocketPort: 5558.0}", "2");
    let feed = Feed::from_scheduler(Arc::new(Scheduler::from_config_str(&yaml).unwrap())).unwrap();
    let o = feed.options();
    assert_eq!(
        (
            o.concurrency,
            o.discover_events_port,
            o.discover_replay_port,
            o.metrics_port
        ),
        (3, Some(5557), Some(5558), Some(9090))
    );
    assert_eq!(o.scrape_interval, Duration::from_secs(2));
    feed.stop();
    // Out of range: refused when the configuration loads.
    let yaml = cfg("{replaySocketPort: 70000}", "1");
    let Err(e) = Scheduler::from_config_str(&yaml) else {
        panic!("an out-of-range port loads")
    };
    let e = e.to_string();
    assert!(e.contains("replaySocketPort"), "{e}");
}

/// A pod removed and added again at the same time (a controller's callback
/// beside a discovery sync) is, whichever wins, either followed and
/// routable or neither: never followed with its endpoint gone.
#[test]
fn a_pod_removed_and_re_added_at_once_stays_routable_if_followed() {
    let s = sched();
    let feed = Arc::new(Feed::new(s.clone(), opts()));
    let spec = || {
        let mut spec = PodSpec::new("p", "127.0.0.9:8000");
        spec.scrape = false;
        spec
    };
    for round in 0..300 {
        feed.add_pod(spec()).unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let (f, b) = (feed.clone(), barrier.clone());
        let remover = std::thread::spawn(move || {
            b.wait();
            f.remove_pod("p").unwrap();
        });
        barrier.wait();
        // Retried until the removal has taken the old pod out.
        while feed.add_pod(spec()).is_err() {
            std::thread::yield_now();
        }
        remover.join().unwrap();
        let followed = feed.pods().contains(&"p".to_string());
        let routable = s.endpoint_state("p").is_ok();
        assert_eq!((followed, routable), (true, true), "round {round}");
        feed.remove_pod("p").unwrap();
    }
}

/// `FeedOptions::bind` given to `Feed::new` is bound by `start` (not only
/// by a feed built from a configuration), and a pod dialing it is heard.
#[test]
fn a_new_feeds_bind_option_is_bound_at_start() {
    let s = sched();
    let feed = Feed::new(
        s.clone(),
        FeedOptions {
            bind: vec!["tcp://127.0.0.1:0".into()],
            ..opts()
        },
    );
    assert!(
        feed.bound_endpoints().is_empty(),
        "nothing runs before start"
    );
    let mut spec = PodSpec::new("pod-a", "127.0.0.5:8000");
    spec.scrape = false;
    feed.add_pod(spec).unwrap();
    feed.start().unwrap();
    let bound = feed.bound_endpoints();
    assert_eq!(bound.len(), 1);
    assert_ne!(bound[0].port, 0);
    let mut p = Publisher::new("kv@127.0.0.5@m", 10);
    p.connect(&format!("tcp://{}:{}", bound[0].host, bound[0].port))
        .unwrap();
    subscribed(&p);
    p.publish(&block(1));
    wait("the batch", || stats(&feed, "pod-a").events == 1);
    feed.stop();
    assert!(feed.bound_endpoints().is_empty(), "closed by stop");
}

/// A replay socket that fails (nothing listens there) is not asked again
/// at every gap: the next gaps within the back-off are handled as
/// unrecoverable at once, counted as skipped replays, rather than each
/// holding the ingest worker (and every pod it serves) for a dial.
#[test]
fn a_failing_replay_socket_is_backed_off() {
    let s = sched();
    let (p, ev, _) = publisher("kv@x@m", 10, ReplayLayout::WithTopic);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let feed = Feed::new(s.clone(), opts());
    feed.add_pod(pod("a", &ev, Some(&closed))).unwrap();
    feed.start().unwrap();
    subscribed(&p);
    p.publish(&block(0));
    p.record_only(1, &block(1));
    p.publish(&block(2));
    wait("the first gap", || stats(&feed, "a").replays_failed == 1);
    p.record_only(3, &block(3));
    p.publish(&block(4));
    wait("the second gap", || stats(&feed, "a").gaps == 2);
    wait("3 batches", || stats(&feed, "a").events == 3);
    let st = stats(&feed, "a");
    assert_eq!(
        (st.replays_failed, st.replays_skipped, st.clears),
        (1, 1, 2),
        "{st:?}"
    );
    let text = feed.render_metrics();
    assert!(
        text.contains("llmd_feed_replays_total{pod=\"a\",result=\"skipped\"} 1"),
        "{text}"
    );
}

/// A pod name with a NUL character (no Kubernetes name has one; threads are
/// named after pods) is refused with an error, and nothing is left
/// followed or routable.
#[test]
fn a_pod_name_with_a_nul_is_refused() {
    let s = sched();
    let feed = Feed::new(s.clone(), opts());
    feed.start().unwrap();
    let e = feed
        .add_pod(PodSpec::new("a\0b", "127.0.0.1:8000"))
        .unwrap_err();
    assert!(
        matches!(e, FeedError::Config(ref m) if m.contains("NUL")),
        "{e}"
    );
    assert!(feed.pods().is_empty());
    assert!(s.endpoint_names().is_empty());
    feed.stop();
}

/// Settings that cannot run are refused by `start` with the reason; the
/// longest durations are taken as no limit, not as an overflow.
#[test]
fn settings_that_cannot_run_are_refused_at_start() {
    for (o, why) in [
        (
            FeedOptions {
                topics: vec![],
                ..opts()
            },
            "topics is empty",
        ),
        (
            FeedOptions {
                concurrency: 1 << 20,
                ..opts()
            },
            "concurrency",
        ),
        (
            FeedOptions {
                queue_capacity: usize::MAX,
                ..opts()
            },
            "queue_capacity",
        ),
    ] {
        let e = Feed::new(sched(), o).start().unwrap_err();
        assert!(
            matches!(e, FeedError::Config(ref m) if m.contains(why)),
            "{e}"
        );
    }
    // A replay that fails under an endless timeout and reconnects backed off
    // without limit: each doubles saturating.
    let s = sched();
    let (p, ev, _) = publisher("kv@x@m", 10, ReplayLayout::WithTopic);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let feed = Feed::new(
        s,
        FeedOptions {
            replay_timeout: Duration::MAX,
            reconnect_min: Duration::MAX,
            reconnect_max: Duration::MAX,
            ..opts()
        },
    );
    feed.add_pod(pod("a", &ev, Some(&closed))).unwrap();
    feed.start().unwrap();
    subscribed(&p);
    p.publish(&block(0));
    p.record_only(1, &block(1));
    p.publish(&block(2));
    wait("the failed replay", || {
        stats(&feed, "a").replays_failed == 1
    });
    wait("2 batches", || stats(&feed, "a").events == 2);
    feed.stop();
}

/// A replay whose first number lies past the live batch that asked for it
/// (a misrouted or broken replay socket) is not taken: taking it would mark
/// every live number up to it as replayed and drop the stream's next
/// batches as duplicates. The gap counts as not covered; the live batches
/// that follow are applied.
#[test]
fn a_replay_starting_past_the_live_batch_is_not_taken() {
    let (_s, p, feed, _, _) = following_a_with(10, ReplayLayout::WithTopic, opts());
    p.publish(&block(0));
    p.record_only(1_000_000, &block(9));
    p.publish_with_seq(2, &block(2));
    p.publish_with_seq(3, &block(3));
    wait("3 batches", || stats(&feed, "a").events == 3);
    let st = stats(&feed, "a");
    assert_eq!(
        (st.duplicates, st.replays_incomplete, st.clears),
        (0, 1, 1),
        "{st:?}"
    );
}

/// A replay socket that completes the handshake and then answers nothing
/// is asked once per gap at most: its timed-out reply brought nothing, so it
/// is not asked again at once and the next gap finds it backed off, as a
/// socket that refuses connections is (each ask holds the ingest worker,
/// and every pod it serves, for the whole timeout).
#[test]
fn a_silent_replay_socket_is_backed_off() {
    let o = FeedOptions {
        // The back-off after it (twice this) outlasts the test's next gap on
        // a loaded machine.
        replay_timeout: Duration::from_secs(2),
        ..opts()
    };
    let (_s, p, feed, _, _) = following_a_with(10, ReplayLayout::Silent, o);
    p.publish(&block(0));
    p.record_only(1, &block(1));
    p.publish(&block(2));
    wait("the first gap", || {
        stats(&feed, "a").replays_incomplete >= 1
    });
    p.record_only(3, &block(3));
    p.publish(&block(4));
    wait("the second gap", || stats(&feed, "a").gaps == 2);
    wait("3 batches", || stats(&feed, "a").events == 3);
    let st = stats(&feed, "a");
    assert_eq!(
        (st.replays_incomplete, st.replays_skipped, st.clears),
        (1, 1, 2),
        "{st:?}"
    );
}

/// `start` and `stop` called at once end with the feed stopped and every
/// worker joined: `stop` never waits for good on workers whose queues it did
/// not see.
#[test]
fn start_and_stop_at_once_never_hang() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..300 {
            let feed = Arc::new(Feed::new(
                sched(),
                FeedOptions {
                    concurrency: 64,
                    ..opts()
                },
            ));
            let f = feed.clone();
            let starter = std::thread::spawn(move || {
                let _ = f.start();
            });
            // Stop as soon as the start is under way (its workers being
            // made).
            while !feed.is_running() && !starter.is_finished() {
                std::hint::spin_loop();
            }
            feed.stop();
            starter.join().unwrap();
            feed.stop();
            assert!(!feed.is_running());
        }
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("start racing stop hung");
}
