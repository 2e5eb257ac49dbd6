package llmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func newPods(t *testing.T, config string, opts ...Option) *Scheduler {
	t.Helper()
	s, err := NewScheduler(config, append([]Option{WithSeed(5)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"pod-a", "pod-b"} {
		ep := Endpoint{Name: name, Address: fmt.Sprintf("10.0.0.%d:8000", i+1), Model: "llama",
			Labels: map[string]string{"llm-d.ai/role": "decode"}}
		if err := s.AddEndpoint(ep); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestPickRoutesAwayFromLoad(t *testing.T) {
	s := newPods(t, "")
	defer s.Close()
	if s.EndpointCount() != 2 {
		t.Fatalf("endpoints = %d", s.EndpointCount())
	}
	if err := s.UpdateMetrics("pod-a", Metrics{WaitingQueueSize: 40, KVCacheUsage: 0.95}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMetrics("pod-b", Metrics{}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Pick(&Request{ID: "g1", Model: "llama", Tokens: tokens(64), Explain: true,
		Headers: map[string]string{"x-request-id": "g1"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Targets[0].Name != "pod-b" || d.Header("x-gateway-destination-endpoint") != "10.0.0.2:8000" {
		t.Fatalf("decision = %+v", d)
	}
	var expl map[string]any
	if err := json.Unmarshal(d.Explanation, &expl); err != nil {
		t.Fatalf("explanation %q: %v", d.Explanation, err)
	}
	x, err := d.Explain()
	if err != nil || x == nil || x.RequestID != "g1" || len(x.Candidates) != 2 || len(x.Profiles) != 1 {
		t.Fatalf("typed explanation %+v, %v", x, err)
	}
	p := x.Profiles[0]
	if len(p.Picked) != 1 || p.Picked[0] != "pod-b" || len(p.Scorers) == 0 ||
		len(p.Scorers[0].Raw) != len(p.Scored) || len(p.Totals) != len(p.Scored) {
		t.Fatalf("profile %+v", p)
	}
	if ok, err := s.OnFirstToken("g1"); !ok || err != nil {
		t.Fatalf("first token: %v %v", ok, err)
	}
	if ok, err := s.OnTokens("g1", 4); !ok || err != nil {
		t.Fatalf("tokens: %v %v", ok, err)
	}
	sum, ok, err := s.OnComplete("g1", 32)
	if err != nil || !ok || sum.CachedTokens != 32 || sum.OutputTokens < 4 {
		t.Fatalf("summary = %+v, %v, %v", sum, ok, err)
	}
	// An unknown id is not an error in any lifecycle call: found is false.
	if _, ok, err := s.OnComplete("g1", -1); ok || err != nil {
		t.Fatalf("completed twice: %v %v", ok, err)
	}
	if ok, err := s.OnTokens("never", 1); ok || err != nil {
		t.Fatalf("unknown id: %v %v", ok, err)
	}
	// An id that is not UTF-8 is an error, not a silent miss.
	if _, _, err := s.OnComplete("bad\xff", -1); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("non-UTF-8 id: %v", err)
	}
	// A non-streaming reply: the engine's usage gives the output tokens.
	if _, err := s.Pick(&Request{ID: "g2", Model: "llama", Tokens: tokens(64)}); err != nil {
		t.Fatal(err)
	}
	sum, ok, err = s.OnCompleteUsage("g2", Usage{PromptTokens: 64, CompletionTokens: 50, CachedTokens: 16})
	if err != nil || !ok || sum.OutputTokens != 50 || sum.CachedTokens != 16 {
		t.Fatalf("usage summary = %+v, %v, %v", sum, ok, err)
	}
	// UnknownUsage reports nothing: the counted tokens stay.
	if _, err := s.Pick(&Request{ID: "g4", Model: "llama", Tokens: tokens(64), LoRAName: "none", LoRAPath: "/adapters/none"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OnFirstToken("g4"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OnTokens("g4", 6); err != nil {
		t.Fatal(err)
	}
	sum, ok, err = s.OnCompleteUsage("g4", UnknownUsage())
	if err != nil || !ok || sum.OutputTokens != 7 || sum.CachedTokens != -1 {
		t.Fatalf("unknown usage summary = %+v, %v, %v", sum, ok, err)
	}
	// An out-of-range count is an error, and the request is completed anyway.
	if _, err := s.Pick(&Request{ID: "g3", Model: "llama", Tokens: tokens(64)}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.OnCompleteUsage("g3", Usage{PromptTokens: -1, CompletionTokens: 1 << 40, CachedTokens: -1}); !ok || !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("out of range: %v %v", ok, err)
	}
	if _, ok, _ := s.OnComplete("g3", -1); ok {
		t.Fatal("g3 still open")
	}
	text, err := s.RenderMetrics()
	if err != nil || !strings.Contains(text, "llmd_inference_ttft_bucket") ||
		!strings.Contains(text, "llmd_router_routing_score_bucket") {
		t.Fatalf("metrics %q err %v", text, err)
	}

	// vLLM /metrics text turns it around.
	busy := "vllm:num_requests_waiting 50\nvllm:num_requests_running 64\nvllm:kv_cache_usage_perc 0.97\n"
	idle := "vllm:num_requests_waiting 0\nvllm:num_requests_running 1\nvllm:kv_cache_usage_perc 0.05\n"
	if err := s.UpdateMetricsText("pod-b", busy); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMetricsText("pod-a", idle); err != nil {
		t.Fatal(err)
	}
	d, err = s.Pick(&Request{ID: "g2", Model: "llama", Prompt: "hello there"})
	if err != nil || d.Targets[0].Name != "pod-a" || d.Explanation != nil {
		t.Fatalf("decision = %+v, err = %v", d, err)
	}
	if _, ok, err := s.OnError("g2", Cancelled); !ok || err != nil {
		t.Fatalf("on error: %v %v", ok, err)
	}
}

func TestSchedulerErrors(t *testing.T) {
	if _, err := NewScheduler("plugins: [ {type: "); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	if _, err := NewSchedulerFromFile("/nonexistent.yaml"); !errors.Is(err, ErrIO) {
		t.Fatalf("err = %v, want ErrIO", err)
	}
	s, err := NewSchedulerFromFile("../../testdata/llm-d-configs/01-default-load-and-prefix.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Pick(&Request{ID: "x", Model: "llama", Prompt: "hello"})
	var le *Error
	if !errors.Is(err, ErrSchedule) || !errors.As(err, &le) || le.Code != "no_endpoints" || le.Detail != 503 {
		t.Fatalf("err = %#v", err)
	}
	if err := s.RemoveEndpoint("nope"); !errors.Is(err, ErrUnknownEndpoint) {
		t.Fatalf("err = %v", err)
	}
	if err := s.AddEndpoint(Endpoint{Name: "p", Address: "1.2.3.4:5"}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMetricsText("p", "vllm:num_requests_waiting{ 1\n"); !errors.Is(err, ErrMetricsParse) {
		t.Fatalf("err = %v", err)
	}
	if err := s.UpdateMetrics("p", Metrics{KVCacheUsage: 3}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.IngestKVEvents("p", testBatch[:15]); !errors.Is(err, ErrDecode) {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.Pick(&Request{ID: "\xff", Model: "llama"}); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("err = %v", err)
	}
}

const preciseConfig = `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- name: kv-index
  type: precise-prefix-cache-producer
  parameters:
    tokenProcessorConfig:
      blockSizeTokens: 16
- type: prefix-cache-scorer
  parameters:
    prefixMatchInfoProducerName: kv-index
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
    weight: 1
  - pluginRef: max-score-picker
`

func TestKVEventsSteerPicks(t *testing.T) {
	s := newPods(t, preciseConfig)
	defer s.Close()
	// The first event of testBatch stores blocks of tokens 1..32 on pod-b; the
	// batch then removes one and clears, so ingest only the stored prefix.
	stored := append(append([]byte{}, testBatch[:10]...), 0x91)
	stored = append(stored, testBatch[11:70]...)
	stored = append(stored, 0x00)
	st, err := s.IngestKVEvents("pod-b", stored)
	if err != nil || st.Stored != 2 {
		t.Fatalf("stats = %+v, err = %v", st, err)
	}
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("kv%d", i)
		d, err := s.Pick(&Request{ID: id, Model: "llama", Tokens: tokens(48)})
		if err != nil || d.Targets[0].Name != "pod-b" {
			t.Fatalf("decision = %+v, err = %v", d, err)
		}
		s.OnComplete(id, -1)
	}
}

func TestIngestCountsSupersededEvents(t *testing.T) {
	s := newPods(t, preciseConfig)
	defer s.Close()
	// testBatch's stored event, a clear, the event, a clear, the event.
	ev := testBatch[11:70]
	clear := testBatch[len(testBatch)-19 : len(testBatch)-1]
	b := append(append([]byte{}, testBatch[:10]...), 0x95)
	for i := 0; i < 5; i++ {
		if i%2 == 1 {
			b = append(b, clear...)
		} else {
			b = append(b, ev...)
		}
	}
	b = append(b, 0x00)
	st, err := s.IngestKVEvents("pod-a", b)
	if err != nil || st.Superseded != 3 || st.Cleared != 1 || st.Stored != 2 || st.Skipped != 0 {
		t.Fatalf("stats = %+v, err = %v", st, err)
	}
	// An unknown medium is skipped with its reason.
	nvme := append(append([]byte{}, testBatch[:10]...), 0x91)
	nvme = append(nvme, testBatch[11:66]...)
	nvme = append(nvme, 0xa3, 'X', 'Y', 'Z', 0x00)
	st, err = s.IngestKVEvents("pod-b", nvme)
	if err != nil || st.Skipped != 1 || st.SkippedUnknownMedium != 1 || st.Stored != 0 {
		t.Fatalf("stats = %+v, err = %v", st, err)
	}
}

func TestConcurrentGoroutines(t *testing.T) {
	s := newPods(t, "")
	defer s.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				id := fmt.Sprintf("c%d-%d", g, i)
				d, err := s.Pick(&Request{ID: id, Model: "llama", Tokens: tokens(32 + i%64)})
				if err != nil {
					t.Error(err)
					return
				}
				runtime.Gosched()
				s.OnFirstToken(id)
				s.OnTokens(id, 3)
				if _, ok, err := s.OnComplete(id, 0); !ok || err != nil {
					t.Errorf("%s lost", id)
					return
				}
				if g%2 == 0 {
					_ = s.UpdateMetrics(d.Targets[0].Name, Metrics{WaitingQueueSize: uint32(i % 7)})
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestCloseWhileInUse(t *testing.T) {
	s := newPods(t, "")
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				_, err := s.Pick(&Request{ID: fmt.Sprintf("z%d-%d", g, i), Model: "llama", Tokens: tokens(16)})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	s.Close()
	wg.Wait()
	s.Close()
	if _, err := s.Pick(&Request{ID: "late", Model: "llama"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
	if ok, err := s.OnFirstToken("late"); s.EndpointCount() != 0 || ok || !errors.Is(err, ErrClosed) {
		t.Fatalf("closed scheduler answered: %v %v", ok, err)
	}
	if _, _, err := s.OnComplete("late", -1); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed scheduler completed: %v", err)
	}
}

func TestFinalizerReleasesForgottenSchedulers(t *testing.T) {
	for i := 0; i < 50; i++ {
		s := newPods(t, "")
		if _, err := s.Pick(&Request{ID: "f", Model: "llama", Tokens: tokens(16)}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
}

func TestIngestKVMessageSequence(t *testing.T) {
	s, err := NewScheduler("", WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddEndpoint(Endpoint{Name: "pod-a", Address: "10.0.0.1:8000"}); err != nil {
		t.Fatal(err)
	}
	// An empty batch in vLLM's array form: [ts, [], dp_rank].
	empty := []byte{0x93, 0xcb, 0x41, 0xd9, 0x54, 0xfc, 0x40, 0x20, 0x00, 0x00, 0x90, 0x00}
	steps := []struct {
		seq     uint64
		want    SeqStatus
		ignored bool
		missing uint64
	}{
		{5, SeqFirst, false, 0},
		{6, SeqInOrder, false, 0},
		{6, SeqDuplicate, true, 0},
		{9, SeqGap, false, 2},
		{7, SeqReplayed, false, 0},
		{7, SeqDuplicate, true, 0},
		{8, SeqReplayed, false, 0},
		{0, SeqRestart, false, 0},
	}
	for _, st := range steps {
		got, err := s.IngestKVMessage("pod-a", st.seq, empty)
		if err != nil {
			t.Fatalf("seq %d: %v", st.seq, err)
		}
		if got.SeqStatus != st.want || got.Ignored != st.ignored || got.Missing != st.missing {
			t.Fatalf("seq %d: got %+v, want status %d ignored %v missing %d", st.seq, got, st.want, st.ignored, st.missing)
		}
	}
	got, err := s.IngestKVEvents("pod-a", empty)
	if err != nil || got.SeqStatus != SeqNone {
		t.Fatalf("without a sequence number: %+v, %v", got, err)
	}
}

func TestArrivalTimeStartsTheQueueTime(t *testing.T) {
	s, err := NewScheduler("", WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddEndpoint(Endpoint{Name: "pod-a", Address: "10.0.0.1:8000"}); err != nil {
		t.Fatal(err)
	}
	req := &Request{ID: "late", Model: "m", Prompt: "hello", ArrivedAt: time.Now().Add(-2 * time.Second)}
	if _, err := s.Pick(req); err != nil {
		t.Fatal(err)
	}
	s.OnFirstToken("late")
	if _, ok, _ := s.OnComplete("late", 0); !ok {
		t.Fatal("request not tracked")
	}
	text, err := s.RenderMetrics()
	if err != nil {
		t.Fatal(err)
	}
	var queued float64
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "llmd_router_queue_time_seconds_sum") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatal(err)
			}
			queued += v
		}
	}
	if queued < 2 || queued > 60 {
		t.Fatalf("router queue time %v s, want about 2 s", queued)
	}
}

func TestConfigReportAndStrict(t *testing.T) {
	const events = `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: precise-prefix-cache-producer
  parameters:
    kvEventsConfig: {discoverPods: true, podDiscoveryConfig: {socketPort: 5557}}
- type: prefix-cache-scorer
  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}
- type: max-score-picker
`
	s, err := NewScheduler(events)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.ConfigReport()
	if err != nil {
		t.Fatal(err)
	}
	if r.APIVersion != "llm-d.ai/v1alpha1" || len(r.NotExecuted) != 2 {
		t.Fatalf("report %+v", r)
	}
	var settings []string
	for _, p := range r.Plugins {
		if p.Name == "precise-prefix-cache-producer" {
			if p.Status.Status != "executed" {
				t.Fatalf("status %+v", p.Status)
			}
			for _, x := range p.SettingsNotExecuted {
				settings = append(settings, x.Setting)
			}
		}
	}
	if strings.Join(settings, ",") != "kvEventsConfig.discoverPods,kvEventsConfig.podDiscoveryConfig" {
		t.Fatalf("settings %v", settings)
	}
	_, err = NewScheduler(events, Strict())
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "kvEventsConfig.discoverPods") {
		t.Fatalf("strict: %v", err)
	}
	if _, err := NewScheduler("apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\n- type: max-score-picker\n", Strict()); err != nil {
		t.Fatalf("strict, all executed: %v", err)
	}
}

func TestEndpointValidation(t *testing.T) {
	s, err := NewScheduler("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ep := Endpoint{Name: "pod-x", Address: "10.0.0.9:8000"}
	if err := s.AddEndpoint(ep); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEndpoint(ep); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("duplicate: %v", err)
	}
	ep.Address = "10.0.0.10:8001"
	if err := s.ReplaceEndpoint(ep); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceEndpoint(Endpoint{Name: "pod-y", Address: "10.0.0.11:8000"}); !errors.Is(err, ErrUnknownEndpoint) {
		t.Fatalf("replace unknown: %v", err)
	}
	if err := s.AddEndpoint(Endpoint{Name: "pod-z", Address: "10.0.0.12"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("no port: %v", err)
	}
}

// An endpoint beyond a prefix index's maxEndpoints is refused at add time
// (ErrIndex, code "index") and counted; removing one frees its slot.
func TestIndexSlotLimit(t *testing.T) {
	s := newPods(t, "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"+
		"- name: kv\n  type: approx-prefix-cache-producer\n  parameters: {maxEndpoints: 2}\n"+
		"- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: kv}\n- type: max-score-picker\n")
	defer s.Close()
	ep := Endpoint{Name: "pod-c", Address: "10.0.0.3:8000", Model: "llama"}
	err := s.AddEndpoint(ep)
	var le *Error
	if !errors.Is(err, ErrIndex) || !errors.As(err, &le) || le.Code != "index" {
		t.Fatalf("over the limit: %v", err)
	}
	if n := s.EndpointCount(); n != 2 {
		t.Fatalf("endpoint count %d", n)
	}
	text, err := s.RenderMetrics()
	if err != nil || !strings.Contains(text, "llmd_kvindex_endpoints_refused_total 1") {
		t.Fatalf("refusal not counted: %v", err)
	}
	if err := s.RemoveEndpoint("pod-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEndpoint(ep); err != nil {
		t.Fatal(err)
	}
}

// A W3C traceparent continues: the decision forwards a traceparent of the
// same trace naming a new (scheduling) span; a malformed one is dropped.
func TestTraceparentIsForwarded(t *testing.T) {
	s := newPods(t, "")
	defer s.Close()
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	d, err := s.Pick(&Request{ID: "tr1", Model: "llama", Tokens: tokens(64),
		Headers: map[string]string{"traceparent": parent}})
	if err != nil {
		t.Fatal(err)
	}
	got := d.Header("traceparent")
	if len(got) != len(parent) || got[:36] != parent[:36] || got[36:52] == parent[36:52] || got[52:] != "-01" {
		t.Fatalf("forwarded traceparent %q", got)
	}
	d, err = s.Pick(&Request{ID: "tr2", Model: "llama", Tokens: tokens(64),
		Headers: map[string]string{"traceparent": "00-zz-00-01"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Header("traceparent"); got != "" {
		t.Fatalf("malformed traceparent forwarded as %q", got)
	}
}

func TestLatencyPredictionsReachTheSummary(t *testing.T) {
	s := newPods(t, `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: predicted-latency-producer
  parameters:
    streamingMode: true
- type: latency-scorer
- type: max-score-picker
`)
	defer s.Close()
	d, err := s.Pick(&Request{ID: "p1", Model: "llama", Tokens: tokens(1600), Explain: true})
	if err != nil {
		t.Fatal(err)
	}
	x, err := d.Explain()
	if err != nil || x == nil || len(x.PredictedLatency) != len(x.Candidates) {
		t.Fatalf("typed explanation %+v, %v", x, err)
	}
	for _, p := range x.PredictedLatency {
		// The heuristic before anything is learnt: 15,928 prompt tokens a second.
		if p.Prediction == nil || p.Source == nil || *p.Source != "heuristic" ||
			p.Features.InputTokens != 1600 || p.PrefillMsPerToken < 1/15.928-1e-9 || p.PrefillMsPerToken > 1/15.928+1e-9 {
			t.Fatalf("prediction %+v", p)
		}
	}
	if ok, _ := s.OnFirstToken("p1"); !ok {
		t.Fatal("lifecycle lost the request")
	}
	sum, ok, _ := s.OnComplete("p1", -1)
	// Nothing learnt yet: llm-d's throughput heuristic, 1,600 tokens at 15,928 tok/s.
	want := 1600 / 15.928
	if !ok || sum.PredictedTTFTMs < want-1e-6 || sum.PredictedTTFTMs > want+1e-6 || sum.PredictedTPOTMs != -1 {
		t.Fatalf("summary = %+v, %v", sum, ok)
	}
}

func TestMultimodalItemsReachTheEmbeddingsCache(t *testing.T) {
	s := newPods(t, `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: mm-embeddings-cache-scorer
- type: max-score-picker
`)
	defer s.Close()
	items := []string{"img-cat", "img-dog"}
	first, err := s.Pick(&Request{ID: "m0", Model: "llama", Tokens: tokens(32), MmItems: items})
	if err != nil {
		t.Fatal(err)
	}
	s.OnComplete("m0", -1)
	// The endpoint that encoded the items gets them again.
	for i := 1; i <= 8; i++ {
		id := fmt.Sprintf("m%d", i)
		d, err := s.Pick(&Request{ID: id, Model: "llama", Tokens: tokens(32), MmItems: items})
		if err != nil {
			t.Fatal(err)
		}
		if d.Targets[0].Name != first.Targets[0].Name {
			t.Fatalf("pick %d went to %s, items were encoded on %s", i, d.Targets[0].Name, first.Targets[0].Name)
		}
		s.OnComplete(id, -1)
	}
	if _, err := s.Pick(&Request{ID: "bad", Model: "llama", Tokens: tokens(32), MmItems: []string{"x", ""}}); err == nil {
		t.Fatal("an empty item was accepted")
	}
}

func TestPickBatchColocatesEachPromptsSamples(t *testing.T) {
	s := newPods(t, `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: burst-prefix-cache-producer
  parameters: {blockSizeTokens: 16, windowDurationMs: 40}
- type: prefix-cache-scorer
  parameters: {prefixMatchInfoProducerName: burst-prefix-cache-producer}
- type: max-score-picker
`)
	defer s.Close()
	if w := s.BurstWindow(); w != 40*time.Millisecond {
		t.Fatalf("burst window %v", w)
	}
	a, b := make([]uint32, 64), make([]uint32, 64)
	for i := range a {
		a[i], b[i] = uint32(100+i), uint32(900+i)
	}
	var reqs []Request
	for i := 0; i < 6; i++ {
		toks := a
		if i%2 == 1 {
			toks = b
		}
		reqs = append(reqs, Request{ID: fmt.Sprintf("b%d", i), Model: "llama", Tokens: toks})
	}
	reqs = append(reqs, Request{ID: "empty", Model: "llama", Tokens: []uint32{}})
	decs, errs, err := s.PickBatch(reqs)
	if err != nil || len(decs) != 7 || len(errs) != 7 {
		t.Fatalf("batch: %d decisions, %d errors, %v", len(decs), len(errs), err)
	}
	for i := 0; i < 6; i++ {
		if errs[i] != nil || decs[i] == nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if decs[i].Targets[0].Name != decs[i%2].Targets[0].Name {
			t.Fatalf("request %d went to %s, its prompt's first to %s", i, decs[i].Targets[0].Name, decs[i%2].Targets[0].Name)
		}
	}
	if decs[0].Targets[0].Name == decs[1].Targets[0].Name {
		t.Fatal("two prompts, one pod")
	}
	if decs[6] != nil || errs[6] == nil {
		t.Fatalf("an empty prompt was picked: %v", decs[6])
	}
	if d, e, err := s.PickBatch(nil); d != nil || e != nil || err != nil {
		t.Fatal("an empty batch did something")
	}
	plain := newPods(t, "")
	defer plain.Close()
	if plain.BurstWindow() != 0 {
		t.Fatal("a burst window without a burst producer")
	}
}

func TestExpireRequestsReleasesAbandonedOnes(t *testing.T) {
	s := newPods(t, "")
	defer s.Close()
	if _, err := s.Pick(&Request{ID: "abandoned", Model: "llama", Tokens: tokens(64)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if n, err := s.ExpireRequests(time.Hour); err != nil || n != 0 {
		t.Fatalf("young request expired: %d, %v", n, err)
	}
	if n, err := s.ExpireRequests(0); err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	if _, found, _ := s.OnComplete("abandoned", -1); found {
		t.Fatal("still open after expiry")
	}
	if _, err := s.ExpireRequests(-time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative age: %v", err)
	}
}

// WithMaxOpenRequests bounds the requests held open: a pick at the limit
// expires the oldest first, counted in the metrics.
func TestMaxOpenRequestsBoundsOpenRequests(t *testing.T) {
	plain := newPods(t, "")
	if plain.OpenRequestsLimit() != 1<<20 {
		t.Fatalf("default limit %d", plain.OpenRequestsLimit())
	}
	plain.Close()
	if plain.OpenRequestsLimit() != 0 {
		t.Fatal("a closed scheduler has a limit")
	}
	for _, n := range []int{0, -1} {
		if _, err := NewScheduler("", WithMaxOpenRequests(n)); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("limit %d: %v", n, err)
		}
	}
	s := newPods(t, "", WithMaxOpenRequests(4))
	defer s.Close()
	if s.OpenRequestsLimit() != 4 {
		t.Fatalf("limit %d", s.OpenRequestsLimit())
	}
	for i := 1; i <= 5; i++ {
		if _, err := s.Pick(&Request{ID: fmt.Sprintf("o%d", i), Model: "llama", Tokens: tokens(64)}); err != nil {
			t.Fatal(err)
		}
	}
	text, err := s.RenderMetrics()
	if err != nil || !strings.Contains(text, "llmd_open_requests_expired_at_limit_total 1\n") {
		t.Fatalf("expired at limit not counted: %v", err)
	}
	if s.OpenRequests() != 4 {
		t.Fatalf("open %d", s.OpenRequests())
	}
	if _, found, _ := s.OnComplete("o1", -1); found {
		t.Fatal("the oldest request is still open")
	}
	if _, found, _ := s.OnComplete("o5", -1); !found {
		t.Fatal("the newest request was expired")
	}
}

// ExpireRequests takes a fraction of a millisecond as a whole one, not as
// an age of 0 that would expire every open request.
func TestExpiryAgesRoundUpToMilliseconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		0: 0, 999 * time.Microsecond: 1, time.Millisecond: 1, time.Millisecond + 1: 2, time.Hour: 3_600_000,
	} {
		if got := ceilMillis(d); got != want {
			t.Fatalf("%v: %d ms, want %d", d, got, want)
		}
	}
}

// A prompt text and token ids together are refused, as in C and Python,
// rather than one of them dropped.
func TestPromptAndTokensTogetherAreRefused(t *testing.T) {
	s := newPods(t, "")
	defer s.Close()
	_, err := s.Pick(&Request{ID: "both", Model: "llama", Prompt: "hi", Tokens: tokens(16)})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("both: %v", err)
	}
	_, err = s.Pick(&Request{ID: "path", Model: "llama", Prompt: "hi", LoRAPath: "/a"})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a LoRA path without its name: %v", err)
	}
	if s.OpenRequests() != 0 {
		t.Fatal("a refused pick opened a request")
	}
	// A config file that is not UTF-8 cannot be read (ErrIO), as in C.
	path := t.TempDir() + "/bad.yaml"
	if err := os.WriteFile(path, []byte{0xff, 0xfe, '\n'}, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSchedulerFromFile(path); !errors.Is(err, ErrIO) {
		t.Fatalf("non-UTF-8 file: %v", err)
	}
}

// OnPrefillDone ends a disaggregated request's prefill leg: its time is
// observed, then the hand-off to the first decode token.
func TestOnPrefillDoneTimesThePrefillLeg(t *testing.T) {
	s, err := NewSchedulerFromFile("../../testdata/llm-d-configs/03-pd-disaggregation-prefix-decider.yaml", WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, role := range map[string]string{"p-0": "prefill", "d-0": "decode"} {
		addr := "10.0.0.1:8000"
		if role == "decode" {
			addr = "10.0.0.2:8000"
		}
		if err := s.AddEndpoint(Endpoint{Name: name, Address: addr, Labels: map[string]string{"llm-d.ai/role": role}}); err != nil {
			t.Fatal(err)
		}
	}
	tokens := make([]uint32, 2048)
	for i := range tokens {
		tokens[i] = uint32(i)
	}
	d, err := s.Pick(&Request{ID: "pd-1", Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	if d.Prefill == nil || d.Prefill.Name != "p-0" {
		t.Fatalf("not disaggregated: %+v", d)
	}
	if ok, _ := s.OnPrefillDone("pd-1"); !ok {
		t.Fatal("OnPrefillDone: known id not found")
	}
	if ok, err := s.OnPrefillDone("nope"); ok || err != nil {
		t.Fatal("OnPrefillDone: known id not found, or unknown id found")
	}
	s.OnFirstToken("pd-1")
	s.OnComplete("pd-1", -1)
	text, err := s.RenderMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "llmd_inference_pd_handoff_seconds_count") {
		t.Fatalf("no hand-off observed:\n%s", text)
	}
}

// A host that fell back to another target reports the endpoint that served
// the request: its in-flight gauge moves there.
func TestOnServedByMovesTheRequest(t *testing.T) {
	s := newPods(t, "")
	defer s.Close()
	d, err := s.Pick(&Request{ID: "fb", Model: "llama", Tokens: tokens(64)})
	if err != nil {
		t.Fatal(err)
	}
	first, other := d.Targets[0].Name, "pod-a"
	if first == "pod-a" {
		other = "pod-b"
	}
	if _, err := s.OnServedBy("fb", "pod-z"); !errors.Is(err, ErrUnknownEndpoint) {
		t.Fatalf("unknown endpoint: %v", err)
	}
	if found, err := s.OnServedBy("nope", other); found || err != nil {
		t.Fatalf("unknown id: %v %v", found, err)
	}
	if found, err := s.OnServedBy("fb", other); !found || err != nil {
		t.Fatalf("served by: %v %v", found, err)
	}
	text, err := s.RenderMetrics()
	if err != nil {
		t.Fatal(err)
	}
	gauge := func(name string) string {
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, `llmd_router_inflight_requests{endpoint="`+name+`"`) {
				return l[strings.LastIndexByte(l, ' ')+1:]
			}
		}
		return ""
	}
	if gauge(other) != "1" || gauge(first) != "0" {
		t.Fatalf("gauges %s=%q %s=%q\n%s", other, gauge(other), first, gauge(first), text)
	}
	if _, found, err := s.OnComplete("fb", -1); !found || err != nil {
		t.Fatalf("complete: %v %v", found, err)
	}
}

// E/P/D: a multimodal request's encoder endpoints are decision targets of
// their own, and in the x-encoder-hosts-ports header.
func TestEncodeTargets(t *testing.T) {
	yaml := `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: encode-filter
- type: decode-filter
- type: queue-scorer
- name: mm
  type: always-disagg-multimodal-decider
- type: disagg-profile-handler
  parameters:
    profiles: {decode: decode, encode: encode}
    deciders: {encode: mm}
- type: max-score-picker
schedulingProfiles:
- name: decode
  plugins: [{pluginRef: decode-filter}, {pluginRef: queue-scorer}, {pluginRef: max-score-picker}]
- name: encode
  plugins: [{pluginRef: encode-filter}, {pluginRef: queue-scorer}, {pluginRef: max-score-picker}]
`
	s, err := NewScheduler(yaml, WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, ep := range []Endpoint{
		{Name: "d", Address: "10.0.0.1:8000", Labels: map[string]string{"llm-d.ai/role": "decode"}},
		{Name: "e", Address: "10.0.0.2:8000", Labels: map[string]string{"llm-d.ai/role": "encode"}},
	} {
		if err := s.AddEndpoint(ep); err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.Pick(&Request{ID: "mm1", Model: "m", Tokens: tokens(32), Multimodal: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.EncodeTargets) != 1 || d.EncodeTargets[0] != (Target{Name: "e", Address: "10.0.0.2:8000"}) || d.Targets[0].Name != "d" {
		t.Fatalf("encode targets: %+v", d)
	}
	if v := d.Header("x-encoder-hosts-ports"); v != "10.0.0.2:8000" {
		t.Fatalf("header: %q", v)
	}
	s.OnError("mm1", Cancelled)
	d, err = s.Pick(&Request{ID: "t1", Model: "m", Tokens: tokens(32)})
	if err != nil || len(d.EncodeTargets) != 0 {
		t.Fatalf("text-only: %v %+v", err, d)
	}
	s.OnError("t1", Cancelled)
}
