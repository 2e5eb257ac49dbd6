package llmd

/*
#include <llmd.h>
*/
import "C"

import (
	"encoding/json"
	"time"
	"unsafe"
)

// Feed is the live connection between vLLM pods and a Scheduler: it
// subscribes to the pods' KV events over ZMQ (with vLLM's replay on gaps and
// restarts), scrapes their /metrics, and drops what a pod that stops
// answering had in the index. It runs on the library's own threads; Go
// calls only configure and read it. Close stops and releases it.
type Feed struct {
	handle[*C.llmd_feed]
}

// Pod is one pod a Feed follows.
type Pod struct {
	// Name is the endpoint name (registered in the scheduler unless it is).
	Name string
	// Address is host:port of the pod's OpenAI server.
	Address string
	// Events is the KV-event endpoint to connect to (tcp://host:port); ""
	// means none, or tcp://<host>:<socketPort> when the config discovers pods.
	Events string
	// Replay is the pod's replay endpoint; "" means gaps are not replayed.
	Replay string
	// MetricsURL defaults to http://<Address>/metrics.
	MetricsURL string
	// NoScrape turns /metrics scraping off for the pod.
	NoScrape bool
	// DataParallelSize is the number of ranks publishing on consecutive ports (0 means 1).
	DataParallelSize uint16
}

// PodStats are one pod's counters.
type PodStats struct {
	Name              string `json:"name"`
	Address           string `json:"address"`
	Events            uint64 `json:"events"`
	Blocks            uint64 `json:"blocks"`
	BlocksRemoved     uint64 `json:"blocks_removed"`
	Gaps              uint64 `json:"gaps"`
	Duplicates        uint64 `json:"duplicates"`
	Restarts          uint64 `json:"restarts"`
	Replays           uint64 `json:"replays"`
	ReplaysTooOld     uint64 `json:"replays_too_old"`
	ReplaysIncomplete uint64 `json:"replays_incomplete"`
	ReplaysFailed     uint64 `json:"replays_failed"`
	ReplaysSkipped    uint64 `json:"replays_skipped"`
	Clears            uint64 `json:"clears"`
	Reconnects        uint64 `json:"reconnects"`
	HeartbeatTimeouts uint64 `json:"heartbeat_timeouts"`
	ConnectFailures   uint64 `json:"connect_failures"`
	Malformed         uint64 `json:"malformed"`
	DecodeErrors      uint64 `json:"decode_errors"`
	QueueDrops        uint64 `json:"queue_drops"`
	NotApplied        uint64 `json:"not_applied"`
	Scrapes           uint64 `json:"scrapes"`
	ScrapeErrors      uint64 `json:"scrape_errors"`
	Evictions         uint64 `json:"evictions"`
	// RegistrationFailures counts scrapes of an evicted pod that answered
	// but could not be registered again (e.g. the index's endpoint slots
	// all taken); it stays unroutable and is tried at each scrape.
	RegistrationFailures uint64   `json:"registration_failures"`
	LastEventAgeS        *float64 `json:"last_event_age_s"`
	LastScrapeAgeS       *float64 `json:"last_scrape_age_s"`
	Up                   bool     `json:"up"`
	Registered           bool     `json:"registered"`
}

// FeedSetting is a configuration setting and what the feed does with it.
type FeedSetting struct {
	Plugin   string `json:"plugin"`
	Setting  string `json:"setting"`
	Executed bool   `json:"executed"`
	Note     string `json:"note"`
}

// FeedOption sets one of the feed's settings over what the scheduler's
// configuration asks (see NewFeed); each one given is reported by Settings
// as the host's.
type FeedOption func(*feedOptions)

// feedOptions is the JSON object llmd_feed_new_with_options reads; nil
// fields are left out.
type feedOptions struct {
	Topics                  []string `json:"topics,omitempty"`
	Concurrency             *int     `json:"concurrency,omitempty"`
	EventsPort              *uint16  `json:"events_port,omitempty"`
	ReplayPort              *uint16  `json:"replay_port,omitempty"`
	ScrapeInterval          *float64 `json:"scrape_interval,omitempty"`
	ScrapeTimeout           *float64 `json:"scrape_timeout,omitempty"`
	ReplayTimeout           *float64 `json:"replay_timeout,omitempty"`
	RemoveAfter             *float64 `json:"remove_after,omitempty"`
	ClearOnUnrecoverableGap *bool    `json:"clear_on_unrecoverable_gap,omitempty"`
	HeartbeatInterval       *float64 `json:"heartbeat_interval,omitempty"`
}

func seconds(d time.Duration) *float64 { s := d.Seconds(); return &s }

// FeedTopics subscribes to these topic prefixes (llm-d's topicFilter).
func FeedTopics(prefixes ...string) FeedOption {
	return func(o *feedOptions) { o.Topics = append([]string{}, prefixes...) }
}

// FeedConcurrency sets the ingest workers (1..=1024).
func FeedConcurrency(n int) FeedOption { return func(o *feedOptions) { o.Concurrency = &n } }

// FeedEventsPort is the KV-event port of pods added without an events
// endpoint (llm-d's socketPort).
func FeedEventsPort(port uint16) FeedOption { return func(o *feedOptions) { o.EventsPort = &port } }

// FeedReplayPort is the replay port of pods added without a replay endpoint.
func FeedReplayPort(port uint16) FeedOption { return func(o *feedOptions) { o.ReplayPort = &port } }

// FeedScrapeInterval sets the time between /metrics scrapes.
func FeedScrapeInterval(d time.Duration) FeedOption {
	return func(o *feedOptions) { o.ScrapeInterval = seconds(d) }
}

// FeedScrapeTimeout sets the deadline of one scrape.
func FeedScrapeTimeout(d time.Duration) FeedOption {
	return func(o *feedOptions) { o.ScrapeTimeout = seconds(d) }
}

// FeedReplayTimeout sets the deadline of one replay request.
func FeedReplayTimeout(d time.Duration) FeedOption {
	return func(o *feedOptions) { o.ReplayTimeout = seconds(d) }
}

// FeedRemoveAfter sets how long a pod may fail its scrapes before it leaves
// the scheduler (its index entries dropped).
func FeedRemoveAfter(d time.Duration) FeedOption {
	return func(o *feedOptions) { o.RemoveAfter = seconds(d) }
}

// FeedClearOnUnrecoverableGap chooses what a gap that cannot be replayed
// does: true (the default) drops the pod's entries, false keeps them.
func FeedClearOnUnrecoverableGap(clear bool) FeedOption {
	return func(o *feedOptions) { o.ClearOnUnrecoverableGap = &clear }
}

// FeedHeartbeatInterval sets the silence after which a ZMTP PING goes to a
// publisher (a peer gone without closing its connection is found within two
// intervals); 0 sends none. Default 10 s.
func FeedHeartbeatInterval(d time.Duration) FeedOption {
	return func(o *feedOptions) { o.HeartbeatInterval = seconds(d) }
}

// NewFeed creates a feed for s that executes what its configuration asks of
// the data plane (kvEventsConfig, metrics-data-source, file-discovery; see
// Settings), with opts over it; a bad option matches ErrInvalidArgument and
// names itself. Nothing runs until Start. The feed keeps the scheduler's
// state alive; close them in any order.
func NewFeed(s *Scheduler, opts ...FeedOption) (*Feed, error) {
	var o feedOptions
	for _, opt := range opts {
		opt(&o)
	}
	text, err := json.Marshal(o)
	if err != nil {
		return nil, jsonError(err)
	}
	var h *C.llmd_feed
	err = s.with(func(sh *C.llmd_scheduler) error {
		var e *C.llmd_error
		p, n := str(string(text))
		return takeError(C.llmd_feed_new_with_options(sh, p, n, &h, &e), e)
	})
	if err != nil {
		return nil, err
	}
	return ownedSlow(&Feed{handle[*C.llmd_feed]{h: h}}, (*Feed).Close), nil
}

// AddPod follows a pod. A name already followed or a bad endpoint matches
// ErrInvalidArgument.
func (f *Feed) AddPod(p Pod) error {
	return f.with(func(h *C.llmd_feed) error {
		a := getArena()
		defer a.put()
		var d C.llmd_pod_desc
		a.podDesc(&d, p)
		var e *C.llmd_error
		return takeError(C.llmd_feed_add_pod(h, &d, &e), e)
	})
}

func (a *arena) podDesc(d *C.llmd_pod_desc, p Pod) {
	d.name = a.str(p.Name)
	d.address = a.str(p.Address)
	d.events = a.optStr(p.Events)
	d.replay = a.optStr(p.Replay)
	d.metrics_url = a.optStr(p.MetricsURL)
	d.no_scrape = 0
	if p.NoScrape {
		d.no_scrape = 1
	}
	d.data_parallel_size = C.uint16_t(p.DataParallelSize)
}

// SyncPods makes the followed pods exactly pods (a host's discovery
// callback, e.g. a Kubernetes watch): new names are added, missing ones
// removed (with their index entries), changed ones replaced. Pods from DNS
// or file discovery are left alone.
func (f *Feed) SyncPods(pods []Pod) error {
	return f.with(func(h *C.llmd_feed) error {
		a := getArena()
		defer a.put()
		var arr *C.llmd_pod_desc
		if len(pods) > 0 {
			arr = (*C.llmd_pod_desc)(a.alloc(len(pods)*int(unsafe.Sizeof(C.llmd_pod_desc{})), 8))
			descs := unsafe.Slice(arr, len(pods))
			for i := range pods {
				a.podDesc(&descs[i], pods[i])
			}
		}
		var e *C.llmd_error
		return takeError(C.llmd_feed_sync_pods(h, arr, C.size_t(len(pods)), &e), e)
	})
}

// DiscoverDNS follows every address host resolves to (a headless service)
// as a pod at <ip>:<port> named by its IP, resolving again every interval
// (an interval under a millisecond matches ErrInvalidArgument).
func (f *Feed) DiscoverDNS(host string, port uint16, interval time.Duration) error {
	if interval < 0 {
		return negative("interval", interval)
	}
	return f.with(func(h *C.llmd_feed) error {
		hp, hl := str(host)
		var e *C.llmd_error
		return takeError(C.llmd_feed_discover_dns(h, hp, hl, C.uint16_t(port), C.uint64_t(interval.Milliseconds()), &e), e)
	})
}

// WatchFile follows the pods of llm-d's endpoint file (endpoints: [{name,
// namespace, address, port, labels}]), re-read when it changes if watch.
func (f *Feed) WatchFile(path string, watch bool) error {
	return f.with(func(h *C.llmd_feed) error {
		pp, pl := str(path)
		var e *C.llmd_error
		return takeError(C.llmd_feed_watch_file(h, pp, pl, C.bool(watch), &e), e)
	})
}

// RemovePod stops following a pod and removes it (and its index entries)
// from the scheduler; a pod not followed matches ErrUnknownEndpoint with
// Code "unknown_pod".
func (f *Feed) RemovePod(name string) error {
	return f.with(func(h *C.llmd_feed) error {
		np, nl := str(name)
		var e *C.llmd_error
		return takeError(C.llmd_feed_remove_pod(h, np, nl, &e), e)
	})
}

// BindEvents binds a socket for pods that dial in (tcp://*:5557; port 0
// picks one) and returns the bound endpoint.
func (f *Feed) BindEvents(endpoint string) (string, error) {
	var out string
	err := f.with(func(h *C.llmd_feed) error {
		ep, el := str(endpoint)
		var s *C.llmd_string
		var e *C.llmd_error
		if err := takeError(C.llmd_feed_bind_events(h, ep, el, &s, &e), e); err != nil {
			return err
		}
		out = takeString(s)
		return nil
	})
	return out, err
}

// BoundEndpoints returns the endpoints bound for pods that dial in
// (BindEvents and the configuration's zmqEndpoint), as this host dials them:
// a port 0 asked for is the port given, a wildcard host "*" is 127.0.0.1.
// Empty once the feed is stopped.
func (f *Feed) BoundEndpoints() ([]string, error) {
	var bound []string
	raw, err := f.text(func(h *C.llmd_feed, out **C.llmd_string, e **C.llmd_error) C.llmd_status {
		return C.llmd_feed_bound_endpoints_json(h, out, e)
	})
	if err := decodeJSON(raw, err, &bound); err != nil {
		return nil, err
	}
	return bound, nil
}

// Start starts the feed's threads; a stopped feed cannot start again.
func (f *Feed) Start() error {
	return f.with(func(h *C.llmd_feed) error {
		var e *C.llmd_error
		return takeError(C.llmd_feed_start(h, &e), e)
	})
}

// Stop stops every thread and closes every socket; pods stay registered. A
// stopped feed cannot start again: adding pods, syncing, binding and adding
// discovery sources then match ErrInvalidArgument.
func (f *Feed) Stop() {
	_ = f.with(func(h *C.llmd_feed) error {
		C.llmd_feed_stop(h)
		return nil
	})
}

func (f *Feed) text(call func(h *C.llmd_feed, out **C.llmd_string, e **C.llmd_error) C.llmd_status) (string, error) {
	var out string
	err := f.with(func(h *C.llmd_feed) error {
		var s *C.llmd_string
		var e *C.llmd_error
		if err := takeError(call(h, &s, &e), e); err != nil {
			return err
		}
		out = takeString(s)
		return nil
	})
	return out, err
}

// Running is true between Start and Stop; false after Close.
func (f *Feed) Running() bool {
	running := false
	_ = f.with(func(h *C.llmd_feed) error {
		running = bool(C.llmd_feed_running(h))
		return nil
	})
	return running
}

// UnknownPublisherMessages counts messages received on a bound socket from
// publishers whose topic names no followed pod (not applied).
func (f *Feed) UnknownPublisherMessages() uint64 {
	var n uint64
	_ = f.with(func(h *C.llmd_feed) error {
		n = uint64(C.llmd_feed_unknown_publisher_messages(h))
		return nil
	})
	return n
}

// Pods returns the names of the followed pods.
func (f *Feed) Pods() ([]string, error) {
	var pods []string
	raw, err := f.text(func(h *C.llmd_feed, out **C.llmd_string, e **C.llmd_error) C.llmd_status {
		return C.llmd_feed_pods_json(h, out, e)
	})
	if err := decodeJSON(raw, err, &pods); err != nil {
		return nil, err
	}
	return pods, nil
}

// Stats returns every followed pod's counters by name.
func (f *Feed) Stats() (map[string]PodStats, error) {
	var stats map[string]PodStats
	raw, err := f.statsJSON()
	if err := decodeJSON(raw, err, &stats); err != nil {
		return nil, err
	}
	return stats, nil
}

// statsJSON is the library's per-pod counters as JSON.
func (f *Feed) statsJSON() (string, error) {
	return f.text(func(h *C.llmd_feed, out **C.llmd_string, e **C.llmd_error) C.llmd_status {
		return C.llmd_feed_stats_json(h, out, e)
	})
}

// Settings lists the configuration settings the feed executes or not.
func (f *Feed) Settings() ([]FeedSetting, error) {
	var s []FeedSetting
	raw, err := f.text(func(h *C.llmd_feed, out **C.llmd_string, e **C.llmd_error) C.llmd_status {
		return C.llmd_feed_settings_json(h, out, e)
	})
	if err := decodeJSON(raw, err, &s); err != nil {
		return nil, err
	}
	return s, nil
}

// RenderMetrics returns the llmd_feed_* metrics as Prometheus text (serve
// them beside Scheduler.RenderMetrics).
func (f *Feed) RenderMetrics() (string, error) {
	return f.text(func(h *C.llmd_feed, out **C.llmd_string, e **C.llmd_error) C.llmd_status {
		return C.llmd_feed_render_metrics(h, out, e)
	})
}

// Close stops and releases the feed; later calls return ErrClosed. Stopping
// waits for the feed's threads (up to the network timeouts); calls made
// meanwhile return ErrClosed at once rather than wait with it.
func (f *Feed) Close() error {
	f.closeOutside(func(h *C.llmd_feed) { C.llmd_feed_free(h) })
	return disowned(f)
}

// takeString copies and frees an llmd_string.
func takeString(s *C.llmd_string) string {
	out := cString(C.llmd_string_data(s), C.llmd_string_len(s))
	C.llmd_string_free(s)
	return out
}

// cString copies n bytes at p: by the full size_t length (C.GoStringN takes
// a C int, which would cut text of 2 GiB or more).
func cString(p *C.char, n C.size_t) string {
	if p == nil || n == 0 {
		return ""
	}
	return string(unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)))
}
