package llmd

import (
	"fmt"
	"testing"
)

// BenchmarkPick is the loop of bindings/c/bench/pick_bench.c and the Rust
// criterion bench pick/rust: llm-d's default pipeline, 4 endpoints with
// metrics, a 256-token prompt, pick then complete.
func BenchmarkPick(b *testing.B) {
	s, err := NewScheduler("", WithSeed(1))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("pod-%d", i)
		if err := s.AddEndpoint(Endpoint{Name: name, Address: fmt.Sprintf("10.0.0.%d:8000", i), Model: "llama"}); err != nil {
			b.Fatal(err)
		}
		m := Metrics{WaitingQueueSize: uint32(i), RunningRequestsSize: uint32(2 * i), KVCacheUsage: 0.1 * float64(i)}
		if err := s.UpdateMetrics(name, m); err != nil {
			b.Fatal(err)
		}
	}
	req := &Request{ID: "bench", Model: "llama", Tokens: tokens(256)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := s.Pick(req)
		if err != nil {
			b.Fatal(err)
		}
		_ = d.Targets[0].Address
		s.OnComplete("bench", -1)
	}
}

// BenchmarkCall is the bare boundary: a lifecycle call for an unknown id.
func BenchmarkCall(b *testing.B) {
	s, err := NewScheduler("", WithSeed(1))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.OnFirstToken("unknown")
	}
}
