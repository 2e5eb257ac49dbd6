package llmd

/*
#include <llmd.h>
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Endpoint is a model server the scheduler can route to.
type Endpoint struct {
	// Name is unique (for Kubernetes, namespace/pod).
	Name string
	// Address is the ip:port written into the routing headers.
	Address string
	// Model is the served base model; "" when unknown (serves any model).
	Model string
	// Labels include llm-d.ai/role (prefill, decode, both).
	Labels map[string]string
	// LoRAAdapters the endpoint can serve.
	LoRAAdapters []string
}

// Metrics is a snapshot of an endpoint's load, as scraped from vLLM.
type Metrics struct {
	WaitingQueueSize    uint32
	RunningRequestsSize uint32
	// KVCacheUsage is in [0, 1].
	KVCacheUsage    float64
	MaxActiveModels uint32
	CacheBlockSize  uint32
	CacheNumBlocks  uint64
	// UpdatedAtNs is the scheduler-clock time of the snapshot; 0 means now.
	UpdatedAtNs   uint64
	ActiveModels  []string
	WaitingModels []string
}

// ApplyStats counts what one KV-event batch changed.
type ApplyStats struct {
	Stored, Removed, Cleared uint32
	// Skipped counts blocks or events not placed, all reasons: the sum of
	// the three Skipped* fields below.
	Skipped uint32
	// SkippedUnknownParent: router keys whose parent or engine key was never
	// stored, whose parent ends inside a router block, or too few tokens.
	SkippedUnknownParent uint32
	// SkippedUnknownMedium: events on a medium other than GPU, CPU or storage.
	SkippedUnknownMedium uint32
	// SkippedStale: events of an endpoint removed while its batch was on the way.
	SkippedStale uint32
	// ParityMismatches: published keys that differ from the router's own
	// hash of the same tokens (the configured seed, algorithm or block size
	// is wrong).
	ParityMismatches uint32
	// Superseded: in a batch with more than one AllBlocksCleared, the events
	// before the last one, which it erases (not applied one by one, in none
	// of the other counts; 0 for a batch with one clear, applied whole).
	Superseded uint32
	// SeqStatus is what the sequence number said (SeqNone without one).
	SeqStatus SeqStatus
	// Ignored is true when the batch was dropped as a duplicate.
	Ignored bool
	// Missing counts the batches lost before this one when SeqStatus is SeqGap.
	Missing uint64
}

// SeqStatus classifies a batch's ZMQ sequence number per publisher.
type SeqStatus uint32

// Sequence statuses (values of llmd_seq_status).
const (
	SeqNone      SeqStatus = 0 // no sequence number given
	SeqFirst     SeqStatus = 1 // first number seen from this publisher
	SeqInOrder   SeqStatus = 2 // last + 1
	SeqGap       SeqStatus = 3 // batches were lost; the batch is still applied
	SeqRestart   SeqStatus = 4 // publisher restarted; its entries were dropped first
	SeqDuplicate SeqStatus = 5 // the same batch again; ignored
	SeqReplayed  SeqStatus = 6 // a recent gap's next lost batch (replay socket, in order); applied
)

// Scheduler picks the endpoint for each request. It is safe for concurrent
// use; Close releases it (a finalizer does so if Close is forgotten).
type Scheduler struct {
	handle[*C.llmd_scheduler]
	exporter atomic.Pointer[OtlpExporter]
}

// Option configures NewScheduler.
type Option func(*options)

type options struct {
	seed            *uint64
	strict          bool
	maxOpenRequests *int
}

// WithSeed makes tie-breaking reproducible.
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = &seed } }

// Strict refuses a configuration with any configured plugin or setting that
// the library accepts but does not execute (a precise producer's
// kvEventsConfig, a token producer's vllm backend, host-owned plugins);
// the error names each. Without it they load and are listed by ConfigReport.
func Strict() Option { return func(o *options) { o.strict = true } }

// WithMaxOpenRequests bounds the requests held open between Pick and
// OnComplete / OnError (default 2^20; at least 1). A pick that finds this
// many open first expires the oldest sixteenth, as ExpireRequests would,
// counted in llmd_open_requests_expired_at_limit_total.
func WithMaxOpenRequests(n int) Option { return func(o *options) { o.maxOpenRequests = &n } }

func wrap(h *C.llmd_scheduler) *Scheduler {
	return owned(&Scheduler{handle: handle[*C.llmd_scheduler]{h: h}}, (*Scheduler).Close)
}

// NewScheduler builds a scheduler from an llm-d EndpointPickerConfig in YAML
// or JSON; "" gives llm-d's default pipeline. Errors match ErrConfig.
func NewScheduler(config string, opts ...Option) (*Scheduler, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var co C.llmd_scheduler_options
	if o.seed != nil {
		co.has_seed = 1
		co.seed = C.uint64_t(*o.seed)
	}
	co.strict = cFlag(o.strict)
	if n := o.maxOpenRequests; n != nil {
		if *n < 1 {
			return nil, &Error{Status: StatusInvalidArgument, Code: "invalid_argument",
				Message: fmt.Sprintf("max open requests must be at least 1, got %d", *n)}
		}
		co.max_open_requests = C.uint64_t(*n)
	}
	cp, cl := str(config)
	if config == "" {
		cp = nil
	}
	var h *C.llmd_scheduler
	var e *C.llmd_error
	if err := takeError(C.llmd_scheduler_new_with_options(cp, cl, &co, &h, &e), e); err != nil {
		return nil, err
	}
	return wrap(h), nil
}

// ConfigReport is what loading the configuration did.
type ConfigReport struct {
	APIVersion   string         `json:"api_version"`
	FeatureGates [][2]any       `json:"feature_gates"`
	Plugins      []PluginRecord `json:"plugins"`
	// Warnings: deprecations, Alpha plugins, ignored references.
	Warnings []string `json:"warnings"`
	// DocumentNotExecuted lists settings outside any plugin (e.g.
	// flowControl.maxRequests, requestHandler.propagatePriority) accepted but
	// not executed; Setting is the document path.
	DocumentNotExecuted []SettingNotExecuted `json:"document_not_executed"`
	// NotExecuted has one line per configured plugin or setting that the
	// library accepts but does not execute.
	NotExecuted []string `json:"not_executed"`
}

// PluginRecord is one plugin instance of a loaded configuration.
type PluginRecord struct {
	Name       string `json:"name"`
	PluginType string `json:"plugin_type"`
	// Injected: added by the loader (llm-d's defaults), not written in the config.
	Injected bool `json:"injected"`
	Status   struct {
		// Status is "executed" or "accepted_not_executed".
		Status string `json:"status"`
		Reason string `json:"reason,omitempty"`
	} `json:"status"`
	Remark              *string              `json:"remark"`
	SettingsNotExecuted []SettingNotExecuted `json:"settings_not_executed"`
}

// SettingNotExecuted is a setting accepted but not executed by the library.
type SettingNotExecuted struct {
	// Setting is the dotted path inside the plugin's parameters.
	Setting string `json:"setting"`
	// Reason says what the host does instead.
	Reason string `json:"reason"`
}

// ConfigReport returns what loading the configuration did.
func (s *Scheduler) ConfigReport() (*ConfigReport, error) {
	var r ConfigReport
	text, err := s.text(func(h *C.llmd_scheduler, out **C.llmd_string, e **C.llmd_error) C.llmd_status {
		return C.llmd_scheduler_config_report_json(h, out, e)
	})
	if err := decodeJSON(text, err, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// NewSchedulerFromFile reads the configuration from a file.
func NewSchedulerFromFile(path string, opts ...Option) (*Scheduler, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Status: StatusIO, Code: "io", Message: err.Error()}
	}
	// As C and Python read it: a file that is not UTF-8 text cannot be read.
	if !utf8.Valid(text) {
		return nil, &Error{Status: StatusIO, Code: "io", Message: "cannot read " + path + ": not UTF-8 text"}
	}
	return NewScheduler(string(text), opts...)
}

// Close releases the scheduler after calls in flight finish; later calls
// return ErrClosed. Safe to call more than once.
func (s *Scheduler) Close() error {
	s.close(func(h *C.llmd_scheduler) { C.llmd_scheduler_free(h) })
	return disowned(s)
}

// AddEndpoint registers ep. A name already registered, or an address that is
// not host:port (IPv6 in brackets), matches ErrInvalidArgument; use
// ReplaceEndpoint to change a registered endpoint.
func (s *Scheduler) AddEndpoint(ep Endpoint) error { return s.putEndpoint(ep, false) }

// ReplaceEndpoint replaces the registered endpoint of the same name (its
// scraped metrics are kept; its load, cache and index state start over);
// unknown names match ErrUnknownEndpoint.
func (s *Scheduler) ReplaceEndpoint(ep Endpoint) error { return s.putEndpoint(ep, true) }

func (s *Scheduler) putEndpoint(ep Endpoint, replace bool) error {
	return s.with(func(h *C.llmd_scheduler) error {
		a := getArena()
		defer a.put()
		var d C.llmd_endpoint_desc
		d.name = a.str(ep.Name)
		d.address = a.str(ep.Address)
		d.model = a.optStr(ep.Model)
		d.labels, d.n_labels = a.pairs(ep.Labels)
		d.lora_adapters, d.n_lora_adapters = a.strs(ep.LoRAAdapters)
		var e *C.llmd_error
		if replace {
			return takeError(C.llmd_scheduler_replace_endpoint(h, &d, &e), e)
		}
		return takeError(C.llmd_scheduler_add_endpoint(h, &d, &e), e)
	})
}

// RemoveEndpoint unregisters an endpoint; unknown names match ErrUnknownEndpoint.
func (s *Scheduler) RemoveEndpoint(name string) error {
	return s.with(func(h *C.llmd_scheduler) error {
		np, nl := str(name)
		var e *C.llmd_error
		return takeError(C.llmd_scheduler_remove_endpoint(h, np, nl, &e), e)
	})
}

// EndpointCount is the number of registered endpoints.
func (s *Scheduler) EndpointCount() int {
	return s.size(func(h *C.llmd_scheduler) C.size_t { return C.llmd_scheduler_endpoint_count(h) })
}

// Endpoints returns the names of the registered endpoints.
func (s *Scheduler) Endpoints() ([]string, error) {
	var names []string
	text, err := s.text(func(h *C.llmd_scheduler, out **C.llmd_string, e **C.llmd_error) C.llmd_status {
		return C.llmd_scheduler_endpoints_json(h, out, e)
	})
	if err := decodeJSON(text, err, &names); err != nil {
		return nil, err
	}
	return names, nil
}

// ceilMillis is d (not negative) in whole milliseconds, rounded up: a
// fraction of a millisecond is not 0.
func ceilMillis(d time.Duration) int64 {
	ms := d.Milliseconds()
	if d%time.Millisecond != 0 {
		ms++
	}
	return ms
}

// OpenRequests is how many requests were picked and not yet completed
// (nor failed or expired); 0 after Close.
func (s *Scheduler) OpenRequests() int {
	return s.size(func(h *C.llmd_scheduler) C.size_t { return C.llmd_scheduler_open_requests(h) })
}

// OpenRequestsLimit is the most requests held open between Pick and
// completion (WithMaxOpenRequests, default 2^20); 0 after Close.
func (s *Scheduler) OpenRequestsLimit() int {
	return s.size(func(h *C.llmd_scheduler) C.size_t { return C.llmd_scheduler_open_requests_limit(h) })
}

// UpdateMetrics replaces an endpoint's metrics snapshot.
func (s *Scheduler) UpdateMetrics(name string, m Metrics) error {
	return s.with(func(h *C.llmd_scheduler) error {
		a := getArena()
		defer a.put()
		cm := C.llmd_endpoint_metrics{
			waiting_queue_size:    C.uint32_t(m.WaitingQueueSize),
			running_requests_size: C.uint32_t(m.RunningRequestsSize),
			kv_cache_usage:        C.double(m.KVCacheUsage),
			max_active_models:     C.uint32_t(m.MaxActiveModels),
			cache_block_size:      C.uint32_t(m.CacheBlockSize),
			cache_num_blocks:      C.uint64_t(m.CacheNumBlocks),
			updated_at_ns:         C.uint64_t(m.UpdatedAtNs),
		}
		cm.active_models, cm.n_active_models = a.strs(m.ActiveModels)
		cm.waiting_models, cm.n_waiting_models = a.strs(m.WaitingModels)
		np, nl := str(name)
		var e *C.llmd_error
		return takeError(C.llmd_scheduler_update_metrics(h, np, nl, &cm, &e), e)
	})
}

// UpdateMetricsText parses a vLLM /metrics scrape for an endpoint.
func (s *Scheduler) UpdateMetricsText(name, text string) error {
	return s.with(func(h *C.llmd_scheduler) error {
		np, nl := str(name)
		tp, tl := str(text)
		var e *C.llmd_error
		return takeError(C.llmd_scheduler_update_metrics_text(h, np, nl, tp, tl, &e), e)
	})
}

// IngestKVEvents decodes a KV-event payload (the third ZMQ frame) published
// by endpoint and applies it. Malformed bytes match ErrDecode.
func (s *Scheduler) IngestKVEvents(endpoint string, payload []byte) (ApplyStats, error) {
	return s.ingest(endpoint, payload, nil)
}

// IngestKVMessage is IngestKVEvents with the message's ZMQ sequence number
// (the second frame, 8 bytes big-endian): duplicates are ignored and a
// publisher restart drops the endpoint's entries before the batch applies.
func (s *Scheduler) IngestKVMessage(endpoint string, seq uint64, payload []byte) (ApplyStats, error) {
	return s.ingest(endpoint, payload, &seq)
}

func (s *Scheduler) ingest(endpoint string, payload []byte, seq *uint64) (ApplyStats, error) {
	var st C.llmd_apply_stats
	err := s.with(func(h *C.llmd_scheduler) error {
		ep, el := str(endpoint)
		var e *C.llmd_error
		var cseq *C.uint64_t
		var v C.uint64_t
		if seq != nil {
			v = C.uint64_t(*seq)
			cseq = &v
		}
		rc := C.llmd_scheduler_ingest_kv_events(h, ep, el, (*C.uint8_t)(bytesPtr(payload)), C.size_t(len(payload)), cseq, &st, &e)
		return takeError(rc, e)
	})
	return ApplyStats{
		Stored:               uint32(st.stored),
		Removed:              uint32(st.removed),
		Cleared:              uint32(st.cleared),
		Skipped:              uint32(st.skipped),
		SkippedUnknownParent: uint32(st.skipped_unknown_parent),
		SkippedUnknownMedium: uint32(st.skipped_unknown_medium),
		SkippedStale:         uint32(st.skipped_stale),
		ParityMismatches:     uint32(st.parity_mismatches),
		Superseded:           uint32(st.superseded),
		SeqStatus:            SeqStatus(st.seq_status),
		Ignored:              st.ignored != 0,
		Missing:              uint64(st.missing),
	}, err
}

// ExpireRequests releases the requests picked more than maxAge ago that
// never finished (dropped without OnComplete / OnError): their endpoint load,
// in-flight gauges and latency-model accounting, counted with outcome
// expired. It returns how many; a negative maxAge matches ErrInvalidArgument,
// and a fraction of a millisecond counts as a whole one (the C call takes
// milliseconds). Without it the open requests are still bounded: a pick that
// finds OpenRequestsLimit open expires the oldest sixteenth first
// (llmd_open_requests_expired_at_limit_total).
func (s *Scheduler) ExpireRequests(maxAge time.Duration) (int, error) {
	if maxAge < 0 {
		return 0, negative("maxAge", maxAge)
	}
	ms := ceilMillis(maxAge)
	var n C.size_t
	err := s.with(func(h *C.llmd_scheduler) error {
		var e *C.llmd_error
		return takeError(C.llmd_scheduler_expire_requests(h, C.uint64_t(ms), &n, &e), e)
	})
	return int(n), err
}

// Tick runs periodic maintenance (expires speculative index entries).
func (s *Scheduler) Tick() error {
	return s.with(func(h *C.llmd_scheduler) error {
		var e *C.llmd_error
		return takeError(C.llmd_scheduler_tick(h, &e), e)
	})
}

// RenderMetrics returns the scheduler's token-level metrics (the llmd_*
// families: TTFT, TPOT, cache hits, routing scores, decisions, index health)
// as Prometheus text, for the host's /metrics handler.
func (s *Scheduler) RenderMetrics() (string, error) {
	return s.text(func(h *C.llmd_scheduler, out **C.llmd_string, e **C.llmd_error) C.llmd_status {
		return C.llmd_scheduler_render_metrics(h, out, e)
	})
}

// text is what a C call that returns an llmd_string gives.
func (s *Scheduler) text(call func(h *C.llmd_scheduler, out **C.llmd_string, e **C.llmd_error) C.llmd_status) (string, error) {
	var text string
	err := s.with(func(h *C.llmd_scheduler) error {
		var out *C.llmd_string
		var e *C.llmd_error
		if err := takeError(call(h, &out, &e), e); err != nil {
			return err
		}
		text = takeString(out)
		return nil
	})
	return text, err
}

// size is what a C accessor of a count gives; 0 after Close.
func (s *Scheduler) size(get func(h *C.llmd_scheduler) C.size_t) int {
	n := 0
	_ = s.with(func(h *C.llmd_scheduler) error {
		n = int(get(h))
		return nil
	})
	return n
}

// decodeJSON unmarshals text a C call returned into v.
func decodeJSON(text string, err error, v any) error {
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(text), v); err != nil {
		return jsonError(err)
	}
	return nil
}
