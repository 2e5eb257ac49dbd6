package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"llmd.dev/llmd"
)

// routeTo is a scheduler with `pod` as its one endpoint (pod-a, model
// llama) and a router on it; both are closed when the test ends.
func routeTo(t *testing.T, pod *httptest.Server) (*llmd.Scheduler, *httptest.Server) {
	t.Helper()
	s, err := llmd.NewScheduler("", llmd.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.AddEndpoint(llmd.Endpoint{Name: "pod-a", Address: strings.TrimPrefix(pod.URL, "http://"), Model: "llama"}); err != nil {
		t.Fatal(err)
	}
	router := httptest.NewServer(newRouter(s, nil, ""))
	t.Cleanup(router.Close)
	return s, router
}

// backend is a fake vLLM server that names itself in its answers.
func backend(name string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-inference-pod", name)
		fmt.Fprintf(w, `{"served_by":%q,"dest":%q}`, name, r.Header.Get("x-gateway-destination-endpoint"))
	}))
}

func TestRouterProxiesToPickedBackend(t *testing.T) {
	a, b := backend("pod-a"), backend("pod-b")
	defer a.Close()
	defer b.Close()
	s, err := llmd.NewScheduler("", llmd.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, srv := range map[string]*httptest.Server{"pod-a": a, "pod-b": b} {
		addr := strings.TrimPrefix(srv.URL, "http://")
		if err := s.AddEndpoint(llmd.Endpoint{Name: name, Address: addr, Model: "llama"}); err != nil {
			t.Fatal(err)
		}
	}
	// pod-a is saturated: every request must land on pod-b.
	if err := s.UpdateMetricsText("pod-a", "vllm:num_requests_waiting 80\nvllm:kv_cache_usage_perc 0.99\n"); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMetricsText("pod-b", "vllm:num_requests_waiting 0\nvllm:kv_cache_usage_perc 0.01\n"); err != nil {
		t.Fatal(err)
	}
	router := httptest.NewServer(newRouter(s, nil, ""))
	defer router.Close()

	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := fmt.Sprintf(`{"model":"llama","prompt":"question %d"}`, i)
			resp, err := http.Post(router.URL+"/v1/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var got struct {
				ServedBy string `json:"served_by"`
				Dest     string `json:"dest"`
			}
			raw, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(raw, &got); err != nil || resp.StatusCode != 200 {
				t.Errorf("status %d body %s", resp.StatusCode, raw)
				return
			}
			if got.ServedBy != "pod-b" || got.Dest != strings.TrimPrefix(b.URL, "http://") {
				t.Errorf("served by %+v", got)
			}
			if h := resp.Header.Get("x-inference-pod"); h != "pod-b" {
				t.Errorf("upstream header not forwarded: %q", h)
			}
		}(i)
	}
	wg.Wait()

	resp, err := http.Post(router.URL+"/debug/explain", "application/json", strings.NewReader(`{"model":"llama","prompt":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	var d llmd.Decision
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || d.Targets[0].Name != "pod-b" || len(d.Explanation) == 0 {
		t.Fatalf("decision %+v err %v", d, err)
	}
	resp.Body.Close()

	resp, err = http.Get(router.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// 16 proxied requests completed, all on pod-b.
	if !strings.Contains(string(metrics), "llmd_inference_ttft_bucket") || !strings.Contains(string(metrics), "pod-b") {
		t.Fatalf("metrics:\n%s", metrics)
	}

	if code := postStatus(t, router.URL+"/v1/completions", `{"model":"other","prompt":"hi"}`); code != http.StatusServiceUnavailable {
		t.Fatalf("unknown model: status %d", code)
	}
}

// postStatus POSTs a JSON body and returns the status, the body left unread.
func postStatus(t *testing.T, url, body string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A streamed answer reaches the client chunk by chunk, and a client that
// goes away mid-stream ends its request as cancelled: nothing stays in
// flight on the pod.
func TestStreamsFlushAndADisconnectEndsTheRequest(t *testing.T) {
	release := make(chan struct{})
	pod := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"text\":\"a\"}]}\n\n")
		w.(http.Flusher).Flush()
		select { // the rest never comes while the client is there
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer pod.Close()
	s, router := routeTo(t, pod)
	defer close(release) // first of the deferred calls: nothing waits on the pod

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", router.URL+"/v1/completions",
		strings.NewReader(`{"model":"llama","prompt":"hi","stream":true}`))
	// Unflushed, the head and the chunk would wait in the router's buffer:
	// give up then.
	stop := time.AfterFunc(5*time.Second, cancel)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no answer while the stream is open: %v", err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if !stop.Stop() || err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("the first chunk did not arrive on its own: %q %v", line, err)
	}
	cancel()
	resp.Body.Close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		text, err := s.RenderMetrics()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, `outcome="error_cancelled"} 1`) &&
			strings.Contains(text, `llmd_router_inflight_requests{endpoint="pod-a",pool="default"} 0`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the request did not end as cancelled:\n%s", text)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The prompt is tokenized with every field that shapes it (tools, template
// arguments, an open final message) and none of the others, with vLLM's
// defaults left to vLLM; the pick uses the ids /tokenize gives.
func TestTokenizeGetsWhatShapesThePrompt(t *testing.T) {
	asked := make(chan map[string]json.RawMessage, 1)
	pod := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/tokenize" {
			var body map[string]json.RawMessage
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				t.Error(err)
			}
			asked <- body
			fmt.Fprint(w, `{"count":3,"max_model_len":4096,"tokens":[7,8,9]}`)
			return
		}
		fmt.Fprint(w, `{"choices":[{"text":"ok"}]}`)
	}))
	defer pod.Close()
	s, err := llmd.NewScheduler("", llmd.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := strings.TrimPrefix(pod.URL, "http://")
	if err := s.AddEndpoint(llmd.Endpoint{Name: "pod-a", Address: addr, Model: "llama"}); err != nil {
		t.Fatal(err)
	}
	router := httptest.NewServer(newRouter(s, nil, addr))
	defer router.Close()
	body := `{"model":"llama","temperature":0.5,"stream":false,` +
		`"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"I"}],` +
		`"tools":[{"type":"function","function":{"name":"f"}}],` +
		`"chat_template_kwargs":{"enable_thinking":false},` +
		`"continue_final_message":true,"add_generation_prompt":false}`
	resp, err := http.Post(router.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := <-asked
	want := []string{"add_generation_prompt", "chat_template_kwargs", "continue_final_message", "messages", "tools"}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("/tokenize got %v, want %v", keys, want)
	}
	if string(got["chat_template_kwargs"]) != `{"enable_thinking":false}` {
		t.Fatalf("kwargs changed on the way: %s", got["chat_template_kwargs"])
	}
	// Completions: the prompt and add_special_tokens only.
	resp, err = http.Post(router.URL+"/v1/completions", "application/json",
		strings.NewReader(`{"model":"llama","prompt":"hi","add_special_tokens":false,"max_tokens":3}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got = <-asked
	if len(got) != 2 || string(got["prompt"]) != `"hi"` || string(got["add_special_tokens"]) != "false" {
		t.Fatalf("/tokenize got %v", got)
	}
}

// metricSum adds up every series of one metric in exposition text.
func metricSum(text, name string) float64 {
	total := 0.0
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			total += v
		}
	}
	return total
}

// endedMetrics is the scheduler's metrics once n requests have ended (a
// request ends after its reply reached the client), or after 10 s.
func endedMetrics(t *testing.T, s *llmd.Scheduler, n float64) string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		text, err := s.RenderMetrics()
		if err != nil {
			t.Fatal(err)
		}
		if metricSum(text, "llmd_inference_requests_total") >= n || time.Now().After(deadline) {
			return text
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The engine's usage reaches the scheduler from both kinds of reply: a
// non-streamed body (no token calls), and a stream the router asks for its
// usage chunk, which reaches only a client that asked for it too. A
// streamed error event fails the request though it is forwarded.
func TestRepliesGiveTheEngineUsage(t *testing.T) {
	pod := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream        bool `json:"stream"`
			Prompt        string
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		if !req.Stream {
			fmt.Fprint(w, `{"choices":[{"text":"ok"}],"usage":{"prompt_tokens":40,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":32}}}`)
			return
		}
		if !req.StreamOptions.IncludeUsage {
			t.Error("the router did not ask the stream for its usage")
		}
		w.Header().Set("content-type", "text/event-stream")
		// SSE lines may end in CRLF too.
		end := "\n\n"
		if req.Prompt == "crlf" {
			end = "\r\n\r\n"
		}
		for i := 0; i < 3; i++ {
			fmt.Fprint(w, "data: {\"choices\":[{\"text\":\"a\"}]}"+end)
		}
		if req.Prompt == "fail" {
			fmt.Fprint(w, "data: {\"object\":\"error\",\"message\":\"engine died\"}"+end)
		}
		fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":16}}}"+end)
		fmt.Fprint(w, "data: [DONE]"+end)
	}))
	defer pod.Close()
	s, router := routeTo(t, pod)
	post := func(body string) string {
		resp, err := http.Post(router.URL+"/v1/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, raw)
		}
		return string(raw)
	}

	post(`{"model":"llama","prompt":"whole"}`)
	text := endedMetrics(t, s, 1)
	if out, cached := metricSum(text, "llmd_inference_output_tokens_sum"), metricSum(text, "llmd_inference_cached_tokens_sum"); out != 7 || cached != 32 {
		t.Fatalf("non-streamed usage: output %v cached %v\n%s", out, cached, text)
	}

	if got := post(`{"model":"llama","prompt":"quiet","stream":true}`); strings.Contains(got, "usage") || !strings.Contains(got, "[DONE]") {
		t.Fatalf("a client that did not ask got the usage chunk:\n%s", got)
	}
	if got := post(`{"model":"llama","prompt":"asked","stream":true,"stream_options":{"include_usage":true}}`); !strings.Contains(got, `"completion_tokens":3`) {
		t.Fatalf("a client that asked lost the usage chunk:\n%s", got)
	}
	text = endedMetrics(t, s, 3)
	if out, cached := metricSum(text, "llmd_inference_output_tokens_sum"), metricSum(text, "llmd_inference_cached_tokens_sum"); out != 7+3+3 || cached != 32+16+16 {
		t.Fatalf("streamed usage: output %v cached %v\n%s", out, cached, text)
	}

	if got := post(`{"model":"llama","prompt":"fail","stream":true}`); !strings.Contains(got, "engine died") {
		t.Fatalf("the error event was not forwarded:\n%s", got)
	}
	if text = endedMetrics(t, s, 4); !strings.Contains(text, `outcome="error_engine"} 1`) {
		t.Fatalf("a streamed error event did not fail the request:\n%s", text)
	}

	if got := post(`{"model":"llama","prompt":"crlf","stream":true}`); strings.Contains(got, "usage") || !strings.Contains(got, "[DONE]\r\n\r\n") {
		t.Fatalf("CRLF events:\n%q", got)
	}
	if text = endedMetrics(t, s, 5); metricSum(text, "llmd_inference_output_tokens_sum") != 7+3+3+3+3 {
		t.Fatalf("CRLF events: usage not read\n%s", text)
	}

	if code := postStatus(t, router.URL+"/v1/completions", `{"model":"llama","prompt":"x","stream":true,"stream_options":"yes"}`); code != http.StatusBadRequest {
		t.Fatalf("malformed stream_options: status %d", code)
	}
}

// A picked backend that cannot be reached gives way to the decision's
// fallback; the request is served, not failed.
func TestUnreachableTargetFallsBack(t *testing.T) {
	live := backend("pod-live")
	defer live.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneAddr := strings.TrimPrefix(gone.URL, "http://")
	gone.Close() // nothing listens there now: dials are refused
	s, err := llmd.NewScheduler(`apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: max-score-picker
  parameters: {maxNumOfEndpoints: 2}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: max-score-picker
`, llmd.WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, addr := range map[string]string{"pod-gone": goneAddr, "pod-live": strings.TrimPrefix(live.URL, "http://")} {
		if err := s.AddEndpoint(llmd.Endpoint{Name: name, Address: addr, Model: "llama"}); err != nil {
			t.Fatal(err)
		}
	}
	// The unreachable pod looks idle, so it is picked first.
	if err := s.UpdateMetricsText("pod-live", "vllm:num_requests_waiting 40\n"); err != nil {
		t.Fatal(err)
	}
	router := httptest.NewServer(newRouter(s, nil, ""))
	defer router.Close()
	resp, err := http.Post(router.URL+"/v1/completions", "application/json", strings.NewReader(`{"model":"llama","prompt":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"served_by":"pod-live"`) {
		t.Fatalf("status %d body %s", resp.StatusCode, raw)
	}
	text := endedMetrics(t, s, 1)
	if !strings.Contains(text, `outcome="ok"} 1`) {
		t.Fatalf("the served request counted as failed:\n%s", text)
	}
	// Counted where it was served, and no load left on either pod.
	servedLive := false
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "llmd_inference_requests_total{") && !strings.HasPrefix(l, "llmd_router_inflight_requests{") {
			continue
		}
		switch {
		case strings.HasPrefix(l, "llmd_router_inflight_requests{") && !strings.HasSuffix(l, " 0"):
			t.Fatalf("load left behind: %s", l)
		case strings.Contains(l, `endpoint="pod-gone"`) && !strings.HasSuffix(l, " 0"):
			t.Fatalf("the request is counted on the pod that could not be reached: %s", l)
		case strings.Contains(l, `endpoint="pod-live"`) && strings.HasSuffix(l, " 1"):
			servedLive = true
		}
	}
	if !servedLive {
		t.Fatalf("not counted on the serving pod:\n%s", text)
	}
}
