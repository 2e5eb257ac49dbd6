package llmd

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// sampled is the traceparent header of a sampled trace.
var sampled = map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}

// tracedScheduler is a one-endpoint scheduler exporting through x.
func tracedScheduler(t *testing.T, x *OtlpExporter) *Scheduler {
	t.Helper()
	s, err := NewScheduler("", WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddEndpoint(Endpoint{Name: "a", Address: "10.0.0.1:8000"}); err != nil {
		t.Fatal(err)
	}
	s.SetExporter(x)
	return s
}

// A scheduler with an exporter sends each sampled decision's spans as an
// OTLP/HTTP protobuf POST; unsampled and untraced requests are counted and
// not sent. (The Python suite decodes the payload with the official OTLP
// definitions and checks the span tree.)
func TestPicksExportTheirSpans(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	var types []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		types = append(types, r.Header.Get("Content-Type"))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	x, err := NewOtlpExporter(srv.URL+"/v1/traces", "router", 1.0)
	if err != nil {
		t.Fatal(err)
	}
	s := tracedScheduler(t, x)
	defer s.Close()
	if _, err := s.Pick(&Request{ID: "r1", Tokens: []uint32{1, 2, 3}, Headers: sampled}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PickOpenAI("r2", "/v1/completions", []byte(`{"prompt": [1, 2]}`), sampled, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pick(&Request{ID: "r3", Tokens: []uint32{1}}); err != nil {
		t.Fatal(err)
	}
	if !x.Flush(10 * time.Second) {
		t.Fatal("flush timed out")
	}
	st := x.Stats()
	mu.Lock()
	n := len(bodies)
	mu.Unlock()
	if n == 0 || st.ExportedSpans == 0 || st.UnsampledDecisions != 1 || st.FailedSpans != 0 || st.DroppedSpans != 0 {
		t.Fatalf("posts %d, stats %+v", n, st)
	}
	// ExportTraceServiceRequest: field 1, length-delimited.
	if bodies[0][0] != 0x0a || types[0] != "application/x-protobuf" {
		t.Fatalf("body starts %x, content type %q", bodies[0][0], types[0])
	}
	// Detached: nothing more is exported.
	s.SetExporter(nil)
	if _, err := s.Pick(&Request{ID: "r4", Tokens: []uint32{1}, Headers: sampled}); err != nil {
		t.Fatal(err)
	}
	if x.Stats() != st {
		t.Fatalf("stats moved after detaching: %+v", x.Stats())
	}
	x.Close()
	if x.Flush(time.Second) {
		t.Fatal("flush on a closed exporter")
	}
	if _, err := NewOtlpExporter("https://c:4318/v1/traces", "", 1.0); err == nil {
		t.Fatal("https accepted")
	}
}

// Options tune the queue and timing: a one-span queue drops a decision's
// spans (counted); sizes below 1, durations below 1 ms and intervals past
// 10^9 s are refused.
func TestOtlpOptions(t *testing.T) {
	x, err := NewOtlpExporter("http://127.0.0.1:9/v1/traces", "", 1.0,
		WithQueueSpans(1), WithBatchSpans(1), WithFlushInterval(time.Millisecond), WithExportTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	s := tracedScheduler(t, x)
	defer s.Close()
	if _, err := s.Pick(&Request{ID: "r1", Tokens: []uint32{1, 2, 3}, Headers: sampled}); err != nil {
		t.Fatal(err)
	}
	if st := x.Stats(); st.DroppedSpans == 0 || st.ExportedSpans != 0 {
		t.Fatalf("a one-span queue kept a decision: %+v", st)
	}
	if x.Flush(-time.Second) {
		t.Fatal("a negative flush timeout reported a drained queue")
	}
	for name, opt := range map[string]OtlpOption{
		"queue":    WithQueueSpans(0),
		"batch":    WithBatchSpans(-1),
		"interval": WithFlushInterval(time.Microsecond),
		"timeout":  WithExportTimeout(-time.Second),
		"huge":     WithFlushInterval(2e9 * time.Second),
	} {
		if _, err := NewOtlpExporter("http://127.0.0.1:9/v1/traces", "", 1.0, opt); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
