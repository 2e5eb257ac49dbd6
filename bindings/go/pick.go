package llmd

/*
#include <llmd.h>
*/
import "C"

import (
	"encoding/json"
	"strings"
	"unsafe"
)

// Request is one request to schedule. Empty optional strings mean absent.
type Request struct {
	ID    string
	Model string
	// Tokens is the tokenized prompt; when nil, Prompt text is used.
	Tokens []uint32
	Prompt string
	// LoRAName is the adapter the request asks for, if any.
	LoRAName   string
	CacheSalt  string
	SessionID  string
	Headers    map[string]string
	Priority   int32
	TTFTSLOms  float64
	TPOTSLOms  float64
	Multimodal bool
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
	// Headers the proxy must set (x-gateway-destination-endpoint, ...).
	Headers []Header
	// RemoveHeaders the proxy must drop.
	RemoveHeaders []string
	// Explanation is set when Request.Explain was: every candidate, filter
	// drop and scorer's raw and weighted score.
	Explanation json.RawMessage
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
	return C.GoStringN(s.ptr, C.int(s.len))
}

func goTarget(t C.llmd_target) Target { return Target{goStr(t.name), goStr(t.address)} }

// Pick runs one scheduling cycle. No endpoint for the model gives an error
// matching ErrSchedule with Code "no_endpoints".
func (s *Scheduler) Pick(req *Request) (*Decision, error) {
	var out *Decision
	err := s.with(func(h *C.llmd_scheduler) error {
		a := getArena()
		defer a.put()
		var d C.llmd_request_desc
		d.id = a.str(req.ID)
		d.model = a.str(req.Model)
		if req.Tokens != nil {
			d.tokens, d.n_tokens = a.u32s(req.Tokens)
		} else {
			d.prompt = a.str(req.Prompt)
		}
		d.lora_name = a.optStr(req.LoRAName)
		d.cache_salt = a.optStr(req.CacheSalt)
		d.session_id = a.optStr(req.SessionID)
		d.headers, d.n_headers = a.pairs(req.Headers)
		d.priority = C.int32_t(req.Priority)
		d.ttft_slo_ms = C.double(req.TTFTSLOms)
		d.tpot_slo_ms = C.double(req.TPOTSLOms)
		d.multimodal = C.bool(req.Multimodal)
		var dec *C.llmd_decision
		var e *C.llmd_error
		if err := takeError(C.llmd_scheduler_pick(h, &d, &dec, &e), e); err != nil {
			return err
		}
		defer C.llmd_decision_free(dec)
		var err error
		out, err = readDecision(dec, req.Explain)
		return err
	})
	return out, err
}

func readDecision(dec *C.llmd_decision, explain bool) (*Decision, error) {
	var info C.llmd_decision_info
	C.llmd_decision_get_info(dec, &info)
	out := &Decision{Targets: make([]Target, int(info.n_targets))}
	if len(out.Targets) > 0 {
		out.Targets[0] = goTarget(info.primary)
	}
	for i := 1; i < len(out.Targets); i++ {
		out.Targets[i] = goTarget(C.llmd_decision_target(dec, C.size_t(i)))
	}
	if bool(info.has_prefill) {
		p := goTarget(info.prefill)
		out.Prefill = &p
	}
	out.Headers = make([]Header, int(info.n_headers))
	for i := range out.Headers {
		kv := C.llmd_decision_header(dec, C.size_t(i))
		out.Headers[i] = Header{goStr(kv.key), goStr(kv.value)}
	}
	for i := 0; i < int(info.n_remove_headers); i++ {
		out.RemoveHeaders = append(out.RemoveHeaders, goStr(C.llmd_decision_remove_header(dec, C.size_t(i))))
	}
	if explain {
		var js *C.llmd_string
		var e *C.llmd_error
		if err := takeError(C.llmd_decision_explanation_json(dec, &js, &e), e); err != nil {
			return nil, err
		}
		out.Explanation = json.RawMessage(C.GoBytes(unsafe.Pointer(C.llmd_string_data(js)), C.int(C.llmd_string_len(js))))
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
}

func goSummary(s C.llmd_request_summary) RequestSummary {
	return RequestSummary{
		PromptTokens:   uint64(s.prompt_tokens),
		ScheduledAtNs:  uint64(s.scheduled_at_ns),
		FirstTokenAtNs: uint64(s.first_token_at_ns),
		FinishedAtNs:   uint64(s.finished_at_ns),
		OutputTokens:   uint64(s.output_tokens),
		CachedTokens:   int64(s.cached_tokens),
		Error:          RequestError(s.error),
	}
}

// OnFirstToken records the first token of a request; false for an unknown id.
func (s *Scheduler) OnFirstToken(id string) bool {
	var found C.bool
	_ = s.with(func(h *C.llmd_scheduler) error {
		ip, il := str(id)
		var e *C.llmd_error
		return takeError(C.llmd_scheduler_on_first_token(h, ip, il, &found, &e), e)
	})
	return bool(found)
}

// OnTokens records n more output tokens; false for an unknown id.
func (s *Scheduler) OnTokens(id string, n uint64) bool {
	var found C.bool
	_ = s.with(func(h *C.llmd_scheduler) error {
		ip, il := str(id)
		var e *C.llmd_error
		return takeError(C.llmd_scheduler_on_tokens(h, ip, il, C.uint64_t(n), &found, &e), e)
	})
	return bool(found)
}

// OnComplete records completion; cachedTokens is the engine's reported
// prefix-cache hit (-1 if unknown).
func (s *Scheduler) OnComplete(id string, cachedTokens int64) (RequestSummary, bool) {
	var sum C.llmd_request_summary
	var found C.bool
	_ = s.with(func(h *C.llmd_scheduler) error {
		ip, il := str(id)
		var e *C.llmd_error
		return takeError(C.llmd_scheduler_on_complete(h, ip, il, C.int64_t(cachedTokens), &sum, &found, &e), e)
	})
	return goSummary(sum), bool(found)
}

// OnError records a failed or cancelled request.
func (s *Scheduler) OnError(id string, kind RequestError) (RequestSummary, bool) {
	var sum C.llmd_request_summary
	var found C.bool
	_ = s.with(func(h *C.llmd_scheduler) error {
		ip, il := str(id)
		var e *C.llmd_error
		return takeError(C.llmd_scheduler_on_error(h, ip, il, C.uint32_t(kind), &sum, &found, &e), e)
	})
	return goSummary(sum), bool(found)
}
