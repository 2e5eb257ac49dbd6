package llmd

/*
#include <llmd.h>
*/
import "C"

import (
	"encoding/json"
	"strings"
	"time"
	"unsafe"
)

// Request is one request to schedule. Empty optional strings mean absent.
type Request struct {
	ID    string
	Model string
	// Tokens is the tokenized prompt; when empty, Prompt text is used.
	// Both set is an ErrInvalidArgument.
	Tokens []uint32
	Prompt string
	// LoRAName is the adapter the request asks for, if any.
	LoRAName string
	// LoRAPath is the adapter's path, for engines that identify adapters by
	// path (it is part of their block hashes), if any; it needs LoRAName.
	LoRAPath   string
	CacheSalt  string
	SessionID  string
	Headers    map[string]string
	Priority   int32
	TTFTSLOms  float64
	TPOTSLOms  float64
	Multimodal bool
	// MmItems identifies the request's multimodal items (any stable
	// non-empty string per image, video or audio, e.g. a hash of its URL or
	// bytes) for the mm-embeddings-cache plugins; any implies Multimodal.
	// PickOpenAI fills them from the body itself.
	MmItems []string
	// ArrivedAt is when the request reached the host; latencies (router
	// queue time, TTFT, end-to-end) start there. Zero means "at Pick".
	ArrivedAt time.Time
	// Explain asks for the decision's explanation as JSON (costs a render).
	Explain bool
}

// Target is a chosen endpoint.
type Target struct {
	Name    string
	Address string
}

// Header is a name/value pair the proxy must set upstream.
type Header struct {
	Name, Value string
}

// Decision is where a request goes.
type Decision struct {
	// Targets in preference order; Targets[0] is the destination.
	Targets []Target
	// Prefill is the remote prefill endpoint of a disaggregated request.
	Prefill *Target
	// EncodeTargets are the encoder endpoints of an E/P/D request (where its
	// multimodal items are encoded; also in the x-encoder-hosts-ports header).
	EncodeTargets []Target
	// Headers the proxy must set (x-gateway-destination-endpoint, ...).
	Headers []Header
	// RemoveHeaders the proxy must drop: a stale prefiller header, and
	// routing headers the client sent that this decision does not set.
	RemoveHeaders []string
	// ResponseHeaders the proxy adds to the client's response (llm-d's
	// response-side headers, e.g. the picked endpoint for session affinity).
	ResponseHeaders []Header
	// Explanation is set when Request.Explain was: every candidate, filter
	// drop and scorer's raw and weighted score.
	Explanation json.RawMessage

	// Backing storage for the usual one target and few headers, so that a
	// decision costs one allocation for its structure.
	targetBuf [1]Target
	headerBuf [2]Header
}

// Header returns the value of a header the proxy must set ("" if none).
func (d *Decision) Header(name string) string {
	for _, h := range d.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

func goStr(s C.llmd_str) string {
	if s.ptr == nil {
		return ""
	}
	return cString(s.ptr, s.len)
}

// Pick runs one scheduling cycle. No endpoint for the model gives an error
// matching ErrSchedule with Code "no_endpoints".
func (s *Scheduler) Pick(req *Request) (*Decision, error) {
	// Locked inline (not through s.with): a closure here would cost a heap
	// allocation on the hottest call.
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.h == nil {
		return nil, ErrClosed
	}
	a := getArena()
	defer a.put()
	// The descriptor and the out-slots live in C memory too: Go memory
	// passed by pointer escapes to the heap and is scanned by cgo's pointer
	// checks on every call.
	c := (*pickCall)(a.alloc(int(unsafe.Sizeof(pickCall{})), 8))
	*c = pickCall{}
	d := &c.desc
	a.describe(d, req)
	exp := s.exporter.Load()
	var start time.Time
	if exp != nil {
		start = time.Now()
	}
	var st C.llmd_status
	if len(req.Tokens) > 0 {
		// The token ids go straight from the Go slice (it holds no
		// pointers, so cgo lets C read it during the call) into the
		// request: one copy, no C buffer.
		st = C.llmd_scheduler_pick_tokens(s.h, d, (*C.uint32_t)(unsafe.SliceData(req.Tokens)),
			C.size_t(len(req.Tokens)), &c.dec, &c.err)
	} else {
		st = C.llmd_scheduler_pick(s.h, d, &c.dec, &c.err)
	}
	if err := takeError(st, c.err); err != nil {
		return nil, err
	}
	defer C.llmd_decision_free(c.dec)
	if exp != nil {
		exp.export(c.dec, start, time.Now())
	}
	return readDecision(c.dec, &c.info, req.Explain)
}

// describe fills d with req's fields, copied into the arena; the token ids
// are left out (Pick passes them apart, PickBatch copies them).
func (a *arena) describe(d *C.llmd_request_desc, req *Request) {
	d.id = a.str(req.ID)
	d.model = a.str(req.Model)
	// Both a prompt and token ids reach C, which refuses the pair (as
	// Python does) rather than one of them being dropped unread.
	if len(req.Tokens) == 0 || req.Prompt != "" {
		d.prompt = a.str(req.Prompt)
	}
	d.lora_name = a.optStr(req.LoRAName)
	d.lora_path = a.optStr(req.LoRAPath)
	d.cache_salt = a.optStr(req.CacheSalt)
	d.session_id = a.optStr(req.SessionID)
	d.headers, d.n_headers = a.pairs(req.Headers)
	d.priority = C.int32_t(req.Priority)
	d.ttft_slo_ms = C.double(req.TTFTSLOms)
	d.tpot_slo_ms = C.double(req.TPOTSLOms)
	d.multimodal = cFlag(req.Multimodal)
	d.mm_items, d.n_mm_items = a.strs(req.MmItems)
	d.arrived_at_ns = 0
	if !req.ArrivedAt.IsZero() && req.ArrivedAt.UnixNano() > 0 {
		d.arrived_at_ns = C.uint64_t(req.ArrivedAt.UnixNano())
	}
}

// PickBatch picks a window of requests together, for a
// burst-prefix-cache-producer: requests sharing a prompt go to the same
// replica, as llm-d assigns a window (without one, each is picked as by
// Pick). It returns one decision and one error per request, in order
// (exactly one of the two is nil), or a call error for bad arguments.
// BurstWindow says how long to collect a window. Token ids are copied once
// into C memory (a batch holds many slices, which cgo cannot pass in place).
func (s *Scheduler) PickBatch(reqs []Request) ([]*Decision, []error, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.h == nil {
		return nil, nil, ErrClosed
	}
	n := len(reqs)
	if n == 0 {
		return nil, nil, nil
	}
	a := getArena()
	defer a.put()
	descs := unsafe.Slice((*C.llmd_request_desc)(a.alloc(n*int(unsafe.Sizeof(C.llmd_request_desc{})), 8)), n)
	for i := range reqs {
		descs[i] = C.llmd_request_desc{}
		a.describe(&descs[i], &reqs[i])
		if t := reqs[i].Tokens; t != nil {
			p := a.alloc(4*len(t), 4)
			copy(unsafe.Slice((*uint32)(p), len(t)), t)
			descs[i].tokens, descs[i].n_tokens = (*C.uint32_t)(p), C.size_t(len(t))
		}
	}
	ptr := int(unsafe.Sizeof(unsafe.Pointer(nil)))
	decs := unsafe.Slice((**C.llmd_decision)(a.alloc(n*ptr, 8)), n)
	errs := unsafe.Slice((**C.llmd_error)(a.alloc(n*ptr, 8)), n)
	call := (*pickCall)(a.alloc(int(unsafe.Sizeof(pickCall{})), 8))
	*call = pickCall{}
	exp := s.exporter.Load()
	start := time.Now()
	st := C.llmd_scheduler_pick_batch(s.h, &descs[0], C.size_t(n), &decs[0], &errs[0], &call.err)
	if err := takeError(st, call.err); err != nil {
		return nil, nil, err
	}
	out := make([]*Decision, n)
	outErrs := make([]error, n)
	for i := range reqs {
		if decs[i] == nil {
			outErrs[i] = takeError(C.llmd_error_status(errs[i]), errs[i])
			continue
		}
		if exp != nil {
			exp.export(decs[i], start, time.Now())
		}
		out[i], outErrs[i] = readDecision(decs[i], &call.info, reqs[i].Explain)
		C.llmd_decision_free(decs[i])
	}
	return out, outErrs, nil
}

// BurstWindow is how long a host should collect requests for PickBatch
// (the longest windowDurationMs of the configured burst producers); 0
// without one.
func (s *Scheduler) BurstWindow() time.Duration {
	var w time.Duration
	_ = s.with(func(h *C.llmd_scheduler) error {
		w = time.Duration(C.llmd_scheduler_burst_window_ms(h)) * time.Millisecond
		return nil
	})
	return w
}

// pickCall is one pick's C-side state, placed in an arena.
type pickCall struct {
	desc C.llmd_request_desc
	info C.llmd_decision_info
	dec  *C.llmd_decision
	err  *C.llmd_error
}

// decisionStrings copies every string of a decision into one allocation.
type decisionStrings struct {
	buf []byte
}

func (b *decisionStrings) take(v C.llmd_str) string {
	if v.ptr == nil || v.len == 0 {
		return ""
	}
	start := len(b.buf)
	b.buf = append(b.buf, unsafe.Slice((*byte)(unsafe.Pointer(v.ptr)), int(v.len))...)
	// The buffer is sized up front and never written again, so the string
	// stays immutable.
	return unsafe.String(&b.buf[start], int(v.len))
}

func readDecision(dec *C.llmd_decision, infop *C.llmd_decision_info, explain bool) (*Decision, error) {
	C.llmd_decision_get_info(dec, infop)
	info := *infop
	nt, nh := int(info.n_targets), int(info.n_headers)
	var targetArr [4]C.llmd_target
	var headerArr [4]C.llmd_kv
	targets, headers := targetArr[:0], headerArr[:0]
	if nt > len(targetArr) {
		targets = make([]C.llmd_target, 0, nt)
	}
	if nh > len(headerArr) {
		headers = make([]C.llmd_kv, 0, nh)
	}
	targets, headers = targets[:nt], headers[:nh]
	size := 0
	for i := range targets {
		if i == 0 {
			targets[0] = info.primary
		} else {
			targets[i] = C.llmd_decision_target(dec, C.size_t(i))
		}
		size += int(targets[i].name.len + targets[i].address.len)
	}
	for i := range headers {
		headers[i] = C.llmd_decision_header(dec, C.size_t(i))
		size += int(headers[i].key.len + headers[i].value.len)
	}
	if bool(info.has_prefill) {
		size += int(info.prefill.name.len + info.prefill.address.len)
	}
	strs := decisionStrings{buf: make([]byte, 0, size)}
	out := &Decision{}
	out.Targets, out.Headers = out.targetBuf[:0], out.headerBuf[:0]
	if nt > len(out.targetBuf) {
		out.Targets = make([]Target, 0, nt)
	}
	if nh > len(out.headerBuf) {
		out.Headers = make([]Header, 0, nh)
	}
	out.Targets, out.Headers = out.Targets[:nt], out.Headers[:nh]
	for i, t := range targets {
		out.Targets[i] = Target{strs.take(t.name), strs.take(t.address)}
	}
	for i, h := range headers {
		out.Headers[i] = Header{strs.take(h.key), strs.take(h.value)}
	}
	if bool(info.has_prefill) {
		out.Prefill = &Target{strs.take(info.prefill.name), strs.take(info.prefill.address)}
	}
	// Encoder endpoints come with their header: no call for a decision
	// without one.
	if out.Header("x-encoder-hosts-ports") != "" {
		for i := 0; i < int(C.llmd_decision_encode_target_count(dec)); i++ {
			t := C.llmd_decision_encode_target(dec, C.size_t(i))
			out.EncodeTargets = append(out.EncodeTargets, Target{goStr(t.name), goStr(t.address)})
		}
	}
	for i := 0; i < int(info.n_remove_headers); i++ {
		out.RemoveHeaders = append(out.RemoveHeaders, goStr(C.llmd_decision_remove_header(dec, C.size_t(i))))
	}
	for i := 0; i < int(C.llmd_decision_response_header_count(dec)); i++ {
		h := C.llmd_decision_response_header(dec, C.size_t(i))
		out.ResponseHeaders = append(out.ResponseHeaders, Header{goStr(h.key), goStr(h.value)})
	}
	if explain {
		var js *C.llmd_string
		var e *C.llmd_error
		if err := takeError(C.llmd_decision_explanation_json(dec, &js, &e), e); err != nil {
			return nil, err
		}
		out.Explanation = json.RawMessage(cString(C.llmd_string_data(js), C.llmd_string_len(js)))
		C.llmd_string_free(js)
	}
	return out, nil
}

// RequestError says how a request ended badly.
type RequestError uint32

// Request failures.
const (
	Cancelled RequestError = C.LLMD_REQUEST_ERROR_CANCELLED
	Upstream  RequestError = C.LLMD_REQUEST_ERROR_UPSTREAM
	Other     RequestError = C.LLMD_REQUEST_ERROR_OTHER
)

// RequestSummary is what is known about a finished request.
type RequestSummary struct {
	PromptTokens   uint64
	ScheduledAtNs  uint64
	FirstTokenAtNs uint64 // 0 if no token was seen
	FinishedAtNs   uint64
	OutputTokens   uint64
	CachedTokens   int64 // -1 if unknown
	Error          RequestError
	// The latency model's predicted TTFT and time per output token (ms) for
	// the request on its target at dispatch (configs with a
	// predicted-latency-producer); -1 if none.
	PredictedTTFTMs float64
	PredictedTPOTMs float64
}

func goSummary(s C.llmd_request_summary) RequestSummary {
	return RequestSummary{
		PromptTokens:    uint64(s.prompt_tokens),
		ScheduledAtNs:   uint64(s.scheduled_at_ns),
		FirstTokenAtNs:  uint64(s.first_token_at_ns),
		FinishedAtNs:    uint64(s.finished_at_ns),
		OutputTokens:    uint64(s.output_tokens),
		CachedTokens:    int64(s.cached_tokens),
		Error:           RequestError(s.error),
		PredictedTTFTMs: float64(s.predicted_ttft_ms),
		PredictedTPOTMs: float64(s.predicted_tpot_ms),
	}
}

// OnFirstToken records the first token of a request. found is false for an
// unknown id (nothing is recorded; not an error, as in every binding); err is
// set when the call itself fails (closed scheduler, an id that is not UTF-8).
func (s *Scheduler) OnFirstToken(id string) (found bool, err error) {
	return s.onRequest(id, func(h *C.llmd_scheduler, ip *C.char, il C.size_t, f *C.bool, e **C.llmd_error) C.llmd_status {
		return C.llmd_scheduler_on_first_token(h, ip, il, f, e)
	})
}

// OnPrefillDone records that the remote prefill of a disaggregated request
// finished (the KV cache is on the decode endpoint): the prefill leg's
// in-flight gauges are released and its time observed. found and err are as
// for OnFirstToken.
func (s *Scheduler) OnPrefillDone(id string) (found bool, err error) {
	return s.onRequest(id, func(h *C.llmd_scheduler, ip *C.char, il C.size_t, f *C.bool, e **C.llmd_error) C.llmd_status {
		return C.llmd_scheduler_on_prefill_done(h, ip, il, f, e)
	})
}

// OnServedBy records that a request is served by endpoint instead of its
// decision's first target: the host fell back to another target (one of
// the decision's fallbacks, or its own) after the first could not be
// reached. Its in-flight load and gauges, the endpoint label of its request
// series and the latency model's in-flight accounting move there, and its
// timings train no endpoint's latency model. Call it when the request is
// sent to the new target, before the lifecycle calls that follow. found and
// err are as for OnFirstToken; an endpoint that is not registered is an
// error matching ErrUnknownEndpoint.
func (s *Scheduler) OnServedBy(id, endpoint string) (found bool, err error) {
	return s.onRequest(id, func(h *C.llmd_scheduler, ip *C.char, il C.size_t, f *C.bool, e **C.llmd_error) C.llmd_status {
		ep, el := str(endpoint)
		return C.llmd_scheduler_on_served_by(h, ip, il, ep, el, f, e)
	})
}

// OnTokens records n more output tokens. found and err are as for
// OnFirstToken.
func (s *Scheduler) OnTokens(id string, n uint64) (found bool, err error) {
	return s.onRequest(id, func(h *C.llmd_scheduler, ip *C.char, il C.size_t, f *C.bool, e **C.llmd_error) C.llmd_status {
		return C.llmd_scheduler_on_tokens(h, ip, il, C.uint64_t(n), f, e)
	})
}

// onRequest runs one lifecycle call on request id that says whether the id
// was known.
func (s *Scheduler) onRequest(id string, call func(*C.llmd_scheduler, *C.char, C.size_t, *C.bool, **C.llmd_error) C.llmd_status) (bool, error) {
	var found C.bool
	err := s.with(func(h *C.llmd_scheduler) error {
		ip, il := str(id)
		var e *C.llmd_error
		return takeError(call(h, ip, il, &found, &e), e)
	})
	return bool(found), err
}

// OnComplete records completion; cachedTokens is the engine's reported
// prefix-cache hit (-1 if unknown). found and err are as for OnFirstToken.
func (s *Scheduler) OnComplete(id string, cachedTokens int64) (sum RequestSummary, found bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.h == nil {
		return RequestSummary{}, false, ErrClosed
	}
	a := getArena()
	defer a.put()
	c := (*completeCall)(a.alloc(int(unsafe.Sizeof(completeCall{})), 8))
	*c = completeCall{}
	ip, il := str(id)
	st := C.llmd_scheduler_on_complete(s.h, ip, il, C.int64_t(cachedTokens), &c.sum, &c.found, &c.err)
	return goSummary(c.sum), bool(c.found), takeError(st, c.err)
}

// Usage is the engine's OpenAI usage for a completed request; a count of -1
// was not reported. Start from UnknownUsage and set what the response gave:
// the zero value reports 0 for every count, which replaces the tokens
// counted and records no cache hit.
type Usage struct {
	PromptTokens int64
	// CompletionTokens replace the tokens counted by OnFirstToken/OnTokens,
	// so a non-streaming reply (no token calls) records its output too.
	CompletionTokens int64
	CachedTokens     int64
}

// UnknownUsage reports nothing: every count -1 (as a NULL usage in C).
func UnknownUsage() Usage {
	return Usage{PromptTokens: -1, CompletionTokens: -1, CachedTokens: -1}
}

// OnCompleteUsage records a completion with the engine's usage. A count
// below -1 or of 2^32 or more is not used and gives an error, but the request
// is completed all the same.
func (s *Scheduler) OnCompleteUsage(id string, u Usage) (RequestSummary, bool, error) {
	var sum C.llmd_request_summary
	var found C.bool
	err := s.with(func(h *C.llmd_scheduler) error {
		cu := C.llmd_usage{
			prompt_tokens:     C.int64_t(u.PromptTokens),
			completion_tokens: C.int64_t(u.CompletionTokens),
			cached_tokens:     C.int64_t(u.CachedTokens),
		}
		ip, il := str(id)
		var e *C.llmd_error
		return takeError(C.llmd_scheduler_on_complete_usage(h, ip, il, &cu, &sum, &found, &e), e)
	})
	return goSummary(sum), bool(found), err
}

// completeCall is one completion's out-slots, placed in an arena.
type completeCall struct {
	sum   C.llmd_request_summary
	found C.bool
	err   *C.llmd_error
}

// OnError records a failed or cancelled request. An unknown kind still
// releases the request (recorded as Other) and returns an error; found is as
// for OnFirstToken.
func (s *Scheduler) OnError(id string, kind RequestError) (sum RequestSummary, found bool, err error) {
	var cs C.llmd_request_summary
	var f C.bool
	err = s.with(func(h *C.llmd_scheduler) error {
		ip, il := str(id)
		var e *C.llmd_error
		return takeError(C.llmd_scheduler_on_error(h, ip, il, C.uint32_t(kind), &cs, &f, &e), e)
	})
	return goSummary(cs), bool(f), err
}

// Explanation is a decision's explanation as data: every candidate, each
// profile's filter drops, every scorer's raw and weighted score, the picker's
// choice (the JSON of Decision.Explanation, typed).
type Explanation struct {
	RequestID    string   `json:"request_id"`
	Model        string   `json:"model"`
	Candidates   []string `json:"candidates"`
	PromptTokens int      `json:"prompt_tokens"`
	// Notes are the producers' remarks (prefix matches, estimated tokens).
	Notes    []string       `json:"notes"`
	Profiles []ProfileTrace `json:"profiles"`
	// PrimaryProfile names the profile whose pick is the target.
	PrimaryProfile *string `json:"primary_profile"`
	// DecisionType is "single" or a P/D kind ("prefill-decode", ...).
	DecisionType *string `json:"decision_type"`
	// PredictedLatency is the predicted-latency-producer's output per
	// candidate (empty without one).
	PredictedLatency []PredictedLatency `json:"predicted_latency"`
}

// PredictedLatency is one candidate's latency prediction: what the model was
// given, what it predicted, and the headroom against the request's objectives.
type PredictedLatency struct {
	Endpoint string `json:"endpoint"`
	// Features are the model's inputs for this request on this endpoint.
	Features LatencyFeatures `json:"features"`
	// Prediction is nil when no model (nor the host's predictor) answered.
	Prediction *LatencyPrediction `json:"prediction"`
	// Source is "endpoint", "pool", "heuristic" or "host" (nil without a prediction).
	Source         *string `json:"source"`
	TTFTValid      bool    `json:"ttft_valid"`
	TPOTValid      bool    `json:"tpot_valid"`
	TTFTHeadroomMs float64 `json:"ttft_headroom_ms"`
	TPOTHeadroomMs float64 `json:"tpot_headroom_ms"`
	// Dispatched counts the requests sent there and not finished.
	Dispatched uint32 `json:"dispatched"`
	// PrefillMsPerToken is what one more uncached prompt token adds to the
	// predicted TTFT there (the model's marginal prefill cost, ms).
	PrefillMsPerToken float64 `json:"prefill_ms_per_token"`
}

// LatencyFeatures are the latency model's inputs for one request on one endpoint.
type LatencyFeatures struct {
	InputTokens           float64 `json:"input_tokens"`
	UncachedTokens        float64 `json:"uncached_tokens"`
	InflightPrefillTokens float64 `json:"inflight_prefill_tokens"`
	Waiting               float64 `json:"waiting"`
	Running               float64 `json:"running"`
	KVUsage               float64 `json:"kv_usage"`
	StepWaitMs            float64 `json:"step_wait_ms"`
}

// LatencyPrediction is a predicted TTFT and TPOT (ms; TPOT nil until learnt).
type LatencyPrediction struct {
	TTFTMs float64  `json:"ttft_ms"`
	TPOTMs *float64 `json:"tpot_ms"`
}

// ProfileTrace is one scheduling profile's run.
type ProfileTrace struct {
	Profile string        `json:"profile"`
	Filters []FilterTrace `json:"filters"`
	// Scored are the endpoints that survived the filters, in score order of
	// Totals (Scorers' Raw and Weighted are indexed the same way).
	Scored  []string      `json:"scored"`
	Scorers []ScorerTrace `json:"scorers"`
	Totals  []float64     `json:"totals"`
	Picker  *string       `json:"picker"`
	Picked  []string      `json:"picked"`
	// Error is set when the profile could not pick.
	Error *string `json:"error"`
}

// FilterTrace names the endpoints one filter dropped.
type FilterTrace struct {
	Name    string   `json:"name"`
	Dropped []string `json:"dropped"`
}

// ScorerTrace is one scorer's scores for ProfileTrace.Scored.
type ScorerTrace struct {
	Name     string    `json:"name"`
	Weight   float64   `json:"weight"`
	Raw      []float64 `json:"raw"`
	Weighted []float64 `json:"weighted"`
}

// Explain decodes Decision.Explanation; it is nil unless the request asked
// for it (Request.Explain).
func (d *Decision) Explain() (*Explanation, error) {
	if len(d.Explanation) == 0 {
		return nil, nil
	}
	var x Explanation
	if err := json.Unmarshal(d.Explanation, &x); err != nil {
		return nil, jsonError(err)
	}
	return &x, nil
}

// cFlag is a C flag byte: 1 for true, 0 for false (the ABI's flags are
// bytes, so that any value a caller's memory holds is defined).
func cFlag(b bool) C.uint8_t {
	if b {
		return 1
	}
	return 0
}
