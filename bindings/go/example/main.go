// Command example is a minimal inference router: it picks a vLLM backend for
// each OpenAI-style request with llmd and proxies the request there.
//
//	go run ./example -endpoint pod-a=10.0.0.1:8000 -endpoint pod-b=10.0.0.2:8000 -model llama
//
// A production router would also feed each backend's /metrics scrape
// (Scheduler.UpdateMetricsText) and its KV events (Scheduler.IngestKVEvents).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"

	"llmd.dev/llmd"
)

// router picks a backend per request and proxies to it.
type router struct {
	sched *llmd.Scheduler
	seq   atomic.Uint64
	proxy *httputil.ReverseProxy
}

type ctxKey struct{}

func newRouter(s *llmd.Scheduler) http.Handler {
	rt := &router{sched: s}
	rt.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(ctxKey{}).(*llmd.Decision)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = target.Targets[0].Address
			for _, h := range target.Headers {
				pr.Out.Header.Set(h.Name, h.Value)
			}
			for _, h := range target.RemoveHeaders {
				pr.Out.Header.Del(h)
			}
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/", rt.serveInference)
	mux.HandleFunc("/debug/explain", rt.serveExplain)
	mux.HandleFunc("/metrics", rt.serveMetrics)
	return mux
}

type completionBody struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
}

// decide reads the body (restoring it for the proxy) and picks a backend.
func (rt *router) decide(r *http.Request, explain bool) (*llmd.Decision, string, int, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return nil, "", http.StatusBadRequest, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req completionBody
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, "", http.StatusBadRequest, err
	}
	id := r.Header.Get("x-request-id")
	if id == "" {
		id = fmt.Sprintf("req-%d", rt.seq.Add(1))
	}
	headers := map[string]string{}
	for name := range r.Header {
		headers[strings.ToLower(name)] = r.Header.Get(name)
	}
	d, err := rt.sched.Pick(&llmd.Request{ID: id, Model: req.Model, Prompt: req.Prompt, Headers: headers, Explain: explain})
	var le *llmd.Error
	switch {
	case errors.As(err, &le) && le.Code == "no_endpoints":
		return nil, id, http.StatusServiceUnavailable, err
	case errors.As(err, &le) && le.Code == "resource_exhausted":
		return nil, id, http.StatusTooManyRequests, err
	case err != nil:
		return nil, id, http.StatusBadRequest, err
	}
	return d, id, http.StatusOK, nil
}

func (rt *router) serveInference(w http.ResponseWriter, r *http.Request) {
	d, id, code, err := rt.decide(r, false)
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	rt.proxy.ServeHTTP(rec, r.WithContext(contextWith(r, d)))
	if rec.status >= 500 {
		rt.sched.OnError(id, llmd.Upstream)
		return
	}
	rt.sched.OnFirstToken(id)
	rt.sched.OnComplete(id, -1)
}

// serveExplain answers with the decision and its explanation, without proxying.
func (rt *router) serveExplain(w http.ResponseWriter, r *http.Request) {
	d, id, code, err := rt.decide(r, true)
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	rt.sched.OnError(id, llmd.Cancelled)
	w.Header().Set("content-type", "application/json")
	_ = json.NewEncoder(w).Encode(d)
}

// serveMetrics exposes the scheduler's metrics to Prometheus.
func (rt *router) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	text, err := rt.sched.RenderMetrics()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
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

func main() {
	var eps endpointFlags
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	config := flag.String("config", "", "llm-d EndpointPickerConfig file (default pipeline if empty)")
	model := flag.String("model", "", "model the endpoints serve")
	flag.Var(&eps, "endpoint", "backend as name=host:port (repeatable)")
	flag.Parse()

	var s *llmd.Scheduler
	var err error
	if *config != "" {
		s, err = llmd.NewSchedulerFromFile(*config)
	} else {
		s, err = llmd.NewScheduler("")
	}
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for _, ep := range eps {
		ep.Model = *model
		if err := s.AddEndpoint(ep); err != nil {
			log.Fatal(err)
		}
	}
	log.Printf("llmd %s routing to %d endpoints on %s", llmd.Version(), len(eps), *listen)
	log.Fatal(http.ListenAndServe(*listen, newRouter(s)))
}
