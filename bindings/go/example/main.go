// Command example is a minimal inference router: it picks a vLLM backend for
// each OpenAI-style request with llmd and proxies the request there, passing
// the backend's response headers through and adding the decision's.
//
//	go run ./example -endpoint pod-a=10.0.0.1:8000 -endpoint pod-b=10.0.0.2:8000 -model llama \
//	    -events pod-a=tcp://10.0.0.1:5557 -events pod-b=tcp://10.0.0.2:5557
//	llmd pods -n 4 > fleet.txt & go run ./example -fleet fleet.txt
//
// An llmd.Feed scrapes every backend's /metrics and subscribes to the KV
// events of those that publish them (with vLLM's replay on gaps); with
// events on, prompts are tokenized by a backend's /tokenize so that precise
// prefix-cache routing sees the engine's token ids.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"llmd.dev/llmd"
)

// router picks a backend per request and proxies to it.
type router struct {
	sched *llmd.Scheduler
	feed  *llmd.Feed
	seq   atomic.Uint64
	proxy *httputil.ReverseProxy
	// tokenizeAt is a backend (host:port) whose /tokenize gives the prompt's
	// token ids; "" routes on the text.
	tokenizeAt string
}

type ctxKey struct{}

func newRouter(s *llmd.Scheduler, feed *llmd.Feed, tokenizeAt string) http.Handler {
	rt := &router{sched: s, feed: feed, tokenizeAt: tokenizeAt}
	rt.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(ctxKey{}).(*inflight).decision
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = target.Targets[0].Address
			for _, h := range target.Headers {
				pr.Out.Header.Set(h.Name, h.Value)
			}
			for _, h := range target.RemoveHeaders {
				pr.Out.Header.Del(h)
			}
			// The router read the whole body already (answering the
			// client's Expect itself): the backend gets it at once.
			pr.Out.Header.Del("Expect")
		},
		// A backend that cannot be reached gives way to the decision's
		// fallbacks, in order.
		Transport: fallbacks{http.DefaultTransport},
		// Upstream response headers (e.g. x-inference-pod) pass through;
		// the decision's response headers are added. A successful body is
		// read on its way for tokens and the engine's usage.
		ModifyResponse: func(resp *http.Response) error {
			f := resp.Request.Context().Value(ctxKey{}).(*inflight)
			for _, h := range f.decision.ResponseHeaders {
				resp.Header.Set(h.Name, h.Value)
			}
			if resp.StatusCode < 400 {
				stream := strings.HasPrefix(resp.Header.Get("content-type"), "text/event-stream")
				// An encoded body (gzip, ...) passes as it is: its usage is
				// not read.
				encoded := resp.Header.Get("content-encoding") != ""
				resp.Body = &reply{body: resp.Body, f: f, stream: stream, blind: encoded}
			}
			return nil
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/", rt.serveInference)
	mux.HandleFunc("/debug/explain", rt.serveExplain)
	mux.HandleFunc("/metrics", rt.serveMetrics)
	return mux
}

// inflight is one picked request on its way through the proxy: it ends
// with exactly one OnCompleteUsage or OnError, whatever happens.
type inflight struct {
	sched    *llmd.Scheduler
	decision *llmd.Decision
	id       string
	// body is what goes upstream (to a fallback too); clientUsage is set
	// when the client asked a stream for its usage chunk.
	body        []byte
	clientUsage bool
	// usage is the engine's, as the reply gave it; failed is set by a
	// streamed error event.
	usage  llmd.Usage
	failed bool
	first  atomic.Bool
	ended  atomic.Bool
}

func (f *inflight) firstToken() {
	if !f.first.Swap(true) {
		_, _ = f.sched.OnFirstToken(f.id)
	}
}

func (f *inflight) complete() {
	if f.failed {
		f.fail(llmd.Upstream)
		return
	}
	if !f.ended.Swap(true) {
		f.firstToken()
		// A count the scheduler refuses (out of range) is logged; the
		// request is completed all the same.
		if _, _, err := f.sched.OnCompleteUsage(f.id, f.usage); err != nil {
			log.Printf("%s: usage not recorded: %v", f.id, err)
		}
	}
}

func (f *inflight) fail(kind llmd.RequestError) {
	if !f.ended.Swap(true) {
		_, _, _ = f.sched.OnError(f.id, kind)
	}
}

// fallbacks sends a request to the decision's first target that can be
// reached: a refused or failed dial moves on to the next one (nothing was
// sent); any other failure is the request's. A request sent to a fallback
// is reported to the scheduler as served there.
type fallbacks struct{ base http.RoundTripper }

func (t fallbacks) RoundTrip(req *http.Request) (*http.Response, error) {
	f := req.Context().Value(ctxKey{}).(*inflight)
	var err error
	for i, target := range f.decision.Targets {
		if i > 0 {
			// Sent to a fallback: the request's load and metrics go with
			// it from now on (a reply may take the whole generation).
			if _, err := f.sched.OnServedBy(f.id, target.Name); err != nil {
				log.Printf("%s: served by %s, not recorded: %v", f.id, target.Name, err)
			}
		}
		try := req.Clone(req.Context())
		try.URL.Host = target.Address
		try.Body, try.ContentLength = io.NopCloser(bytes.NewReader(f.body)), int64(len(f.body))
		// The transport may send it again on a kept connection that died.
		try.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.body)), nil }
		resp, e := t.base.RoundTrip(try)
		var op *net.OpError
		if e == nil || !errors.As(e, &op) || op.Op != "dial" || req.Context().Err() != nil {
			return resp, e
		}
		if i+1 < len(f.decision.Targets) {
			log.Printf("%s: %s unreachable (%v), trying %s", f.id, target.Name, e, f.decision.Targets[i+1].Name)
		}
		err = e
	}
	return nil, err
}

// tokenizeFields are the request fields that decide the prompt's tokens,
// as vLLM's /tokenize takes them (its defaults are the completion
// endpoints' own, so a field the client left out stays out): tools and
// template arguments change the rendered chat, and without them the ids,
// hence the block hashes, differ from those the engine caches.
var tokenizeFields = []string{
	"prompt", "messages", "add_generation_prompt", "continue_final_message", "add_special_tokens",
	"chat_template", "chat_template_kwargs", "tools", "mm_processor_kwargs", "media_io_kwargs",
}

// tokens asks a backend's /tokenize for the prompt's token ids (chat
// messages rendered with its template); nil when it cannot answer.
func (rt *router) tokens(r *http.Request, body []byte) []uint32 {
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	ask := map[string]json.RawMessage{}
	for _, k := range tokenizeFields {
		if v, ok := req[k]; ok {
			ask[k] = v
		}
	}
	payload, _ := json.Marshal(ask)
	// Bounded, and given up with the client's request: a backend that hangs
	// must not hold every request (nor leak a goroutine per client gone).
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	call, err := http.NewRequestWithContext(ctx, "POST", "http://"+rt.tokenizeAt+"/tokenize", bytes.NewReader(payload))
	if err != nil {
		return nil
	}
	call.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(call)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out struct {
		Tokens []uint32 `json:"tokens"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return nil
	}
	return out.Tokens
}

// decide reads the body and picks a backend; the returned body is the one
// to send upstream (a stream asks for the engine's usage).
func (rt *router) decide(r *http.Request, explain bool) (*llmd.Decision, string, []byte, bool, int, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return nil, "", nil, false, http.StatusBadRequest, err
	}
	var req struct {
		Model         string          `json:"model"`
		Messages      json.RawMessage `json:"messages"`
		Stream        bool            `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, "", nil, false, http.StatusBadRequest, err
	}
	clientUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	upstream := body
	if req.Stream && !clientUsage {
		// The engine's usage (with its cached tokens) comes only when asked.
		if upstream, err = withUsage(body); err != nil {
			return nil, "", nil, false, http.StatusBadRequest, err
		}
	}
	// The router's own id: two clients may send the same x-request-id
	// (it still reaches the scheduler among the headers).
	id := fmt.Sprintf("req-%d", rt.seq.Add(1))
	headers := map[string]string{}
	for name := range r.Header {
		headers[strings.ToLower(name)] = r.Header.Get(name)
	}
	var tokens []uint32
	if rt.tokenizeAt != "" {
		tokens = rt.tokens(r, body)
	}
	var d *llmd.Decision
	if tokens != nil {
		d, err = rt.sched.Pick(&llmd.Request{ID: id, Model: req.Model, Tokens: tokens, Headers: headers, Explain: explain})
	} else {
		// The OpenAI body as it is: text or token-id prompts, chat messages
		// (/debug/explain takes either body).
		path := r.URL.Path
		if explain {
			path = "/v1/completions"
			if req.Messages != nil {
				path = "/v1/chat/completions"
			}
		}
		d, err = rt.sched.PickOpenAI(id, path, body, headers, explain)
	}
	var le *llmd.Error
	switch {
	case errors.As(err, &le) && le.Code == "no_endpoints":
		return nil, id, nil, false, http.StatusServiceUnavailable, err
	case errors.As(err, &le) && le.Code == "resource_exhausted":
		return nil, id, nil, false, http.StatusTooManyRequests, err
	case err != nil:
		return nil, id, nil, false, http.StatusBadRequest, err
	}
	return d, id, upstream, clientUsage, http.StatusOK, nil
}

// withUsage sets stream_options.include_usage in a request body, keeping
// every other field as it is.
func withUsage(body []byte) ([]byte, error) {
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	opts := map[string]json.RawMessage{}
	if raw, ok := req["stream_options"]; ok && !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, &opts); err != nil {
			return nil, fmt.Errorf("stream_options: %w", err)
		}
	}
	opts["include_usage"] = json.RawMessage("true")
	var err error
	if req["stream_options"], err = json.Marshal(opts); err != nil {
		return nil, err
	}
	return json.Marshal(req)
}

func (rt *router) serveInference(w http.ResponseWriter, r *http.Request) {
	d, id, body, clientUsage, code, err := rt.decide(r, false)
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	f := &inflight{sched: rt.sched, decision: d, id: id, body: body, clientUsage: clientUsage, usage: llmd.UnknownUsage()}
	defer func() {
		// The proxy aborts the handler (panics with http.ErrAbortHandler)
		// when the client or the backend goes away mid-body.
		if p := recover(); p != nil {
			if r.Context().Err() != nil {
				f.fail(llmd.Cancelled)
			} else {
				f.fail(llmd.Upstream)
			}
			panic(p)
		}
	}()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	rt.proxy.ServeHTTP(rec, r.WithContext(contextWith(r, f)))
	switch {
	case r.Context().Err() != nil:
		f.fail(llmd.Cancelled)
	case rec.status >= 400:
		f.fail(llmd.Upstream)
	default:
		f.complete()
	}
}

// serveExplain answers with the decision and its explanation, without proxying.
func (rt *router) serveExplain(w http.ResponseWriter, r *http.Request) {
	d, id, _, _, code, err := rt.decide(r, true)
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	_, _, _ = rt.sched.OnError(id, llmd.Cancelled)
	w.Header().Set("content-type", "application/json")
	_ = json.NewEncoder(w).Encode(d)
}

// serveMetrics exposes the scheduler's and the feed's metrics to Prometheus.
func (rt *router) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	text, err := rt.sched.RenderMetrics()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if rt.feed != nil {
		feedText, err := rt.feed.RenderMetrics()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		text += feedText
	}
	w.Header().Set("content-type", "text/plain; version=0.0.4")
	_, _ = io.WriteString(w, text)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets the proxy flush each streamed chunk (tokens reach the client
// as they come) through http.ResponseController.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type endpointFlags []llmd.Endpoint

func (e *endpointFlags) String() string { return fmt.Sprint(*e) }

func (e *endpointFlags) Set(v string) error {
	name, addr, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want name=host:port, got %q", v)
	}
	*e = append(*e, llmd.Endpoint{Name: name, Address: addr})
	return nil
}

type pairFlags map[string]string

func (p pairFlags) String() string { return fmt.Sprint(map[string]string(p)) }

func (p pairFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want name=tcp://host:port, got %q", v)
	}
	p[name] = value
	return nil
}

// preciseConfig is precise prefix-cache routing on KV events with load
// scorers beside it: the default when backends publish events.
const preciseConfig = `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: precise-prefix-cache-producer
  parameters:
    kvEventsConfig: {discoverPods: false}
- type: prefix-cache-scorer
  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: max-score-picker
`

// readFleet reads `llmd pods` output: name http://host:port events replay.
func readFleet(path string, eps *endpointFlags, events, replay pairFlags) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Fields(sc.Text())
		if len(parts) != 4 {
			continue
		}
		*eps = append(*eps, llmd.Endpoint{Name: parts[0], Address: strings.TrimPrefix(parts[1], "http://")})
		events[parts[0]], replay[parts[0]] = parts[2], parts[3]
	}
	return sc.Err()
}

func main() {
	var eps endpointFlags
	events, replay := pairFlags{}, pairFlags{}
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	config := flag.String("config", "", "llm-d EndpointPickerConfig file (default: precise routing with events, else llm-d's default)")
	model := flag.String("model", "", "model the endpoints serve")
	fleet := flag.String("fleet", "", "backends from `llmd pods` output")
	flag.Var(&eps, "endpoint", "backend as name=host:port (repeatable)")
	flag.Var(events, "events", "a backend's KV-event endpoint as name=tcp://host:port (repeatable)")
	flag.Var(replay, "replay", "a backend's replay endpoint as name=tcp://host:port (repeatable)")
	flag.Parse()
	if *fleet != "" {
		if err := readFleet(*fleet, &eps, events, replay); err != nil {
			log.Fatal(err)
		}
	}

	var s *llmd.Scheduler
	var err error
	switch {
	case *config != "":
		s, err = llmd.NewSchedulerFromFile(*config)
	case len(events) > 0:
		s, err = llmd.NewScheduler(preciseConfig)
	default:
		s, err = llmd.NewScheduler("")
	}
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	feed, err := llmd.NewFeed(s)
	if err != nil {
		log.Fatal(err)
	}
	defer feed.Close()
	for _, ep := range eps {
		ep.Model = *model
		if err := s.AddEndpoint(ep); err != nil {
			log.Fatal(err)
		}
		if err := feed.AddPod(llmd.Pod{Name: ep.Name, Address: ep.Address, Events: events[ep.Name], Replay: replay[ep.Name]}); err != nil {
			log.Fatal(err)
		}
	}
	if err := feed.Start(); err != nil {
		log.Fatal(err)
	}
	tokenizeAt := ""
	if len(events) > 0 && len(eps) > 0 {
		tokenizeAt = eps[0].Address
	}
	// Expire the speculative index entries, and close any request a lost
	// completion left open (its load would count against its pod forever).
	go func() {
		for range time.Tick(time.Second) {
			_ = s.Tick()
			if _, err := s.ExpireRequests(15 * time.Minute); errors.Is(err, llmd.ErrClosed) {
				return
			}
		}
	}()
	log.Printf("llmd %s routing to %d endpoints on %s", llmd.Version(), len(eps), *listen)
	log.Fatal(http.ListenAndServe(*listen, newRouter(s, feed, tokenizeAt)))
}
