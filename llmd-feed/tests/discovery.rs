//! Discovery sources run by the feed, and data-parallel ranks on
//! consecutive ports.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmd_feed::zmq::Publisher;
use llmd_feed::{Discovery, Feed, FeedOptions, PodSpec};
use llmd_kvindex::events::{
    encode_event_batch, BlockStored, EventBatch, EventLayout, HashValue, KvEvent,
};
use llmd_sched::Scheduler;

const CONFIG: &str = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: precise-prefix-cache-producer\n  parameters:\n    kvEventsConfig: {discoverPods: false}\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\n";

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

fn opts() -> FeedOptions {
    FeedOptions {
        concurrency: 1,
        scrape_interval: Duration::from_millis(50),
        ..FeedOptions::default()
    }
}

/// A scheduler and a feed watching `endpoints.yaml` (not written yet) in a
/// fresh temporary folder named after `tag`.
fn watched_file(tag: &str) -> (Arc<Scheduler>, Feed, std::path::PathBuf, std::path::PathBuf) {
    let s = Arc::new(Scheduler::from_config_str(CONFIG).unwrap());
    let dir = std::env::temp_dir().join(format!("llmd-feed-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("endpoints.yaml");
    let _ = std::fs::remove_file(&path);
    let feed = Feed::new(s.clone(), opts());
    feed.add_discovery(Discovery::File {
        path: path.clone(),
        watch: true,
        interval: Duration::from_millis(20),
    })
    .unwrap();
    (s, feed, dir, path)
}

#[test]
fn an_endpoint_file_is_followed_as_it_changes() {
    let (s, feed, dir, path) = watched_file("file");
    std::fs::write(&path, "endpoints:\n- {name: a, namespace: ns, address: 127.0.0.1, port: 1}\n- {name: b, address: 127.0.0.2, port: 1}\n").unwrap();
    feed.add_pod(PodSpec::new("host-pod", "127.0.0.3:1"))
        .unwrap();
    feed.start().unwrap();
    wait("the file's pods", || feed.pods().len() == 3);
    assert_eq!(feed.pods(), vec!["b", "host-pod", "ns/a"]);
    // A new modification time: b stays, a goes, c comes; the host's pod stays.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&path, "endpoints:\n- {name: b, address: 127.0.0.2, port: 1}\n- {name: c, address: 127.0.0.4, port: 1, labels: {llm-d.ai/role: decode}}\n").unwrap();
    wait("the change", || feed.pods() == vec!["b", "c", "host-pod"]);
    let mut names = s.endpoint_names();
    names.sort();
    assert_eq!(names, vec!["b", "c", "host-pod"]);
    assert_eq!(
        s.endpoint_state("c").unwrap().label("llm-d.ai/role"),
        Some("decode")
    );
    feed.stop();
    let _ = std::fs::remove_dir_all(dir);
}

/// A watched file that is not there is counted once while it stays away,
/// and followed once it comes.
#[test]
fn a_missing_endpoint_file_is_counted_then_followed() {
    let (_s, feed, dir, path) = watched_file("missing");
    feed.start().unwrap();
    let errors = |n: u32| {
        feed.render_metrics()
            .contains(&format!("llmd_feed_discovery_errors_total {n}"))
    };
    wait("the missing file counted", || errors(1));
    std::thread::sleep(Duration::from_millis(200)); // ten more looks
    assert!(errors(1), "{}", feed.render_metrics());
    std::fs::write(
        &path,
        "endpoints:\n- {name: a, address: 127.0.0.1, port: 1}\n",
    )
    .unwrap();
    wait("the file's pod", || feed.pods() == vec!["a"]);
    assert!(errors(1));
    feed.stop();
    let _ = std::fs::remove_dir_all(dir);
}

/// A file's pod that could not be followed (its name taken by the host's
/// pod) is tried again each interval, not only when the file changes.
#[test]
fn a_file_pod_that_could_not_be_added_is_tried_again() {
    let (s, feed, dir, path) = watched_file("retry");
    feed.add_pod(PodSpec::new("x", "127.0.0.5:1")).unwrap();
    std::fs::write(
        &path,
        "endpoints:\n- {name: x, address: 127.0.0.6, port: 1}\n",
    )
    .unwrap();
    feed.start().unwrap();
    wait("the failed sync counted", || {
        !feed
            .render_metrics()
            .contains("llmd_feed_discovery_errors_total 0")
    });
    feed.remove_pod("x").unwrap();
    wait("the file's pod", || {
        s.endpoint_state("x")
            .is_ok_and(|p| p.address() == "127.0.0.6:1")
    });
    assert_eq!(feed.pods(), vec!["x"]);
    feed.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn dns_names_pods_by_their_addresses() {
    let s = Arc::new(Scheduler::from_config_str(CONFIG).unwrap());
    let feed = Feed::new(s.clone(), opts());
    feed.add_discovery(Discovery::Dns {
        host: "localhost".into(),
        port: 9,
        interval: Duration::from_millis(50),
    })
    .unwrap();
    feed.start().unwrap();
    wait("a resolved pod", || !feed.pods().is_empty());
    assert!(
        feed.pods().iter().any(|p| p == "127.0.0.1" || p == "::1"),
        "{:?}",
        feed.pods()
    );
    feed.stop();
}

/// Two free consecutive ports.
fn port_pair() -> u16 {
    for _ in 0..100 {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < 65535 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free port pair");
}

/// Two publishers (ranks 0 and 1) bound to consecutive ports, and the
/// first port; bound again on another pair when a port was taken between
/// finding the pair free and binding it.
fn publishers_on_a_port_pair() -> (u16, Vec<Publisher>) {
    for _ in 0..100 {
        let p = port_pair();
        let pubs: Vec<Publisher> = (0..2u16)
            .map_while(|r| {
                let mut publisher = Publisher::new("kv@x@m", 100);
                let bound = publisher.bind(&format!("tcp://127.0.0.1:{}", p + r));
                bound.ok().map(|_| publisher)
            })
            .collect();
        if pubs.len() == 2 {
            return (p, pubs);
        }
    }
    panic!("no port pair could be bound");
}

fn batch(rank: i64, i: u64) -> Vec<u8> {
    batch_as(rank, i, Some(rank))
}

/// [`batch`] whose payload says `payload_rank` (`None`: no rank field, as
/// older vLLM releases publish).
fn batch_as(rank: i64, i: u64, payload_rank: Option<i64>) -> Vec<u8> {
    let ev = KvEvent::BlockStored(BlockStored {
        block_hashes: vec![HashValue::Int((rank as i128) << 40 | i as i128)],
        parent_block_hash: None,
        token_ids: (0..16)
            .map(|t| (rank as u64) * 100_000 + i * 100 + t)
            .collect(),
        block_size: 16,
        ..Default::default()
    });
    encode_event_batch(
        &EventBatch {
            ts: 1.0,
            data_parallel_rank: payload_rank,
            events: vec![ev],
            skipped_events: 0,
        },
        EventLayout::V0_33,
    )
}

#[test]
fn data_parallel_ranks_publish_on_consecutive_ports_with_their_own_numbering() {
    let s = Arc::new(Scheduler::from_config_str(CONFIG).unwrap());
    let (p, pubs) = publishers_on_a_port_pair();
    let feed = Feed::new(s.clone(), opts());
    let mut spec = PodSpec::new("dp", "127.0.0.1:9").with_events(format!("tcp://127.0.0.1:{p}"));
    spec.scrape = false;
    spec.data_parallel_size = 2;
    feed.add_pod(spec).unwrap();
    feed.start().unwrap();
    wait("both ranks subscribed", || {
        pubs.iter().all(|p| p.subscribed() > 0)
    });
    for i in 0..5 {
        for (r, publisher) in pubs.iter().enumerate() {
            publisher.publish(&batch(r as i64, i));
        }
    }
    // Payloads without a rank (older vLLM): the port tells the ranks apart,
    // for the scheduler's sequence tracking too, so their numbers never
    // read as restarts that clear the pod.
    for i in 5..10 {
        for (r, publisher) in pubs.iter().enumerate() {
            publisher.publish(&batch_as(r as i64, i, None));
        }
    }
    wait("20 batches", || feed.stats()["dp"].events == 20);
    let st = &feed.stats()["dp"];
    assert_eq!(
        (st.gaps, st.restarts, st.duplicates, st.blocks),
        (0, 0, 0, 20),
        "{st:?}"
    );
    let text = s.render_metrics();
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("llmd_kvindex_stream_restarts") && !l.ends_with(" 0")),
        "{text}"
    );
    assert!(
        text.contains("llmd_kvindex_blocks{endpoint=\"dp\",tier=\"gpu\"} 20"),
        "{text}"
    );
    feed.stop();
}

/// A sync of an unchanged list leaves the pods alone even when the feed
/// filled in their event ports: before, every such pod was removed and
/// re-added (its index entries dropped, the host's labels lost) on each sync.
/// A pod that cannot be added does not stop the others, and is counted.
#[test]
fn syncing_the_same_pods_again_changes_nothing_and_a_bad_pod_stops_no_other() {
    let s = Arc::new(Scheduler::from_config_str(CONFIG).unwrap());
    s.add_endpoint(llmd_sched::Endpoint::new("p", "127.0.0.9:1").with_label("tier", "gold"))
        .unwrap();
    let feed = Feed::new(
        s.clone(),
        FeedOptions {
            discover_events_port: Some(5557),
            ..opts()
        },
    );
    let list = || {
        vec![
            PodSpec::new("p", "127.0.0.9:1"),
            PodSpec::new("q", "127.0.0.10:1"),
        ]
    };
    feed.sync_pods(list()).unwrap();
    s.ingest_kv_events("q", &batch(0, 1), None).unwrap();
    let held = |s: &Scheduler| {
        s.render_metrics()
            .contains("llmd_kvindex_blocks{endpoint=\"q\"")
    };
    assert!(held(&s));
    for _ in 0..3 {
        feed.sync_pods(list()).unwrap();
    }
    assert_eq!(s.endpoint_state("p").unwrap().label("tier"), Some("gold"));
    assert!(held(&s), "q's blocks were dropped by a re-registration");
    // A changed spec re-registers the pod, with the host's description.
    let mut moved = list();
    moved[0] = PodSpec::new("p", "127.0.0.19:1");
    feed.sync_pods(moved.clone()).unwrap();
    let p = s.endpoint_state("p").unwrap();
    assert_eq!(
        (p.label("tier"), p.address()),
        (Some("gold"), "127.0.0.19:1")
    );
    // The same list again changes nothing: the registration's carried
    // description does not make the pod read as changed.
    s.ingest_kv_events("p", &batch(0, 3), None).unwrap();
    feed.sync_pods(moved).unwrap();
    assert!(
        s.render_metrics()
            .contains("llmd_kvindex_blocks{endpoint=\"p\""),
        "p was removed and added again"
    );
    feed.sync_pods(list()).unwrap();
    assert_eq!(s.endpoint_state("p").unwrap().label("tier"), Some("gold"));
    assert!(feed
        .render_metrics()
        .contains("llmd_feed_discovery_errors_total 0"));

    // An entry that cannot be followed (no name) fails the sync, after the
    // pods beside it are handled.
    let err = feed
        .sync_pods(vec![
            PodSpec::new("", "127.0.0.11:1"),
            PodSpec::new("r", "127.0.0.12:1"),
        ])
        .unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    assert_eq!(feed.pods(), vec!["r"]);
    assert!(feed
        .render_metrics()
        .contains("llmd_feed_discovery_errors_total 1"));

    // A name listed twice: the first entry is followed, the second is an
    // error, and syncing the same list again changes nothing.
    let twice = || {
        vec![
            PodSpec::new("r", "127.0.0.12:1"),
            PodSpec::new("r", "127.0.0.13:1"),
        ]
    };
    s.ingest_kv_events("r", &batch(0, 2), None).unwrap();
    for n in 2..5 {
        let err = feed.sync_pods(twice()).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
        assert!(feed
            .render_metrics()
            .contains(&format!("llmd_feed_discovery_errors_total {n}")));
    }
    assert_eq!(s.endpoint_state("r").unwrap().address(), "127.0.0.12:1");
    assert!(
        s.render_metrics()
            .contains("llmd_kvindex_blocks{endpoint=\"r\""),
        "r was removed and added again"
    );
    // More ranks than the scheduler tracks per endpoint are refused.
    let mut wide = PodSpec::new("w", "127.0.0.14:1");
    wide.data_parallel_size = 1000;
    let err = feed.add_pod(wide).unwrap_err();
    assert!(err.to_string().contains("data_parallel_size"), "{err}");
}

/// An endpoint file over the size bound is an error counted as one, not a
/// read of everything it holds; the pods it names are not followed.
#[test]
fn an_oversized_endpoint_file_is_refused() {
    let (_s, feed, dir, path) = watched_file("oversized");
    let mut text = String::from("endpoints:\n- {name: a, address: 127.0.0.1, port: 1}\n");
    let pad = llmd_feed::discovery::MAX_ENDPOINT_FILE_BYTES as usize + 1 - text.len();
    text.push_str(&format!("#{}\n", "x".repeat(pad)));
    std::fs::write(&path, &text).unwrap();
    let e = llmd_feed::discovery::read_endpoint_file(&path).unwrap_err();
    assert!(e.to_string().contains("is over"), "{e}");
    feed.start().unwrap();
    wait("the refusal counted", || {
        feed.render_metrics()
            .contains("llmd_feed_discovery_errors_total 1\n")
    });
    // Counted once: the file is not read again until it changes.
    std::thread::sleep(Duration::from_millis(100)); // five more looks
    assert!(
        feed.render_metrics()
            .contains("llmd_feed_discovery_errors_total 1\n"),
        "{}",
        feed.render_metrics()
    );
    assert!(feed.pods().is_empty());
    feed.stop();
    let _ = std::fs::remove_dir_all(dir);
}

/// A discovery source added while the feed starts runs, and runs once:
/// whichever of the two comes second finds it added, or started.
#[test]
fn a_source_added_while_the_feed_starts_runs_once() {
    let dir = std::env::temp_dir().join(format!("llmd-feed-race-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("endpoints.yaml");
    std::fs::write(
        &path,
        "endpoints:\n- {name: a, address: 127.0.0.1, port: 1}\n",
    )
    .unwrap();
    for _ in 0..100 {
        let s = Arc::new(Scheduler::from_config_str(CONFIG).unwrap());
        let feed = Arc::new(Feed::new(s, opts()));
        let f = feed.clone();
        let starter = std::thread::spawn(move || f.start().unwrap());
        feed.add_discovery(Discovery::File {
            path: path.clone(),
            watch: false,
            interval: Duration::from_millis(20),
        })
        .unwrap();
        starter.join().unwrap();
        wait("the source's pod", || feed.pods() == vec!["a"]);
        // Started once: a second run would count its add of a pod followed
        // already.
        std::thread::sleep(Duration::from_millis(40));
        let text = feed.render_metrics();
        assert!(
            text.contains("llmd_feed_discovery_errors_total 0\n"),
            "{text}"
        );
        feed.stop();
    }
    let _ = std::fs::remove_dir_all(dir);
}
