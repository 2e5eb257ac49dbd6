package llmd

import (
	"fmt"
	"math"
	"testing"
	"time"

	"llmd.dev/llmd/internal/cbench"
)

// BenchmarkPick is the loop of bindings/c/bench/pick_bench.c and the Rust
// criterion bench pick/rust: llm-d's default pipeline, 4 endpoints with
// metrics, a 256-token prompt, pick then complete.
func BenchmarkPick(b *testing.B) { benchPick(b, 256) }

// BenchmarkPick8k is the same loop with an 8,192-token prompt: what copying
// the prompt across the boundary costs.
func BenchmarkPick8k(b *testing.B) { benchPick(b, 8192) }

func benchPick(b *testing.B, n int) {
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
	req := &Request{ID: "bench", Model: "llama", Tokens: tokens(n)}
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

// BenchmarkGoOverhead alternates rounds of the pick loop through the Go API
// and the same loop in C (same scenario, one process) and reports the
// minimum per-iteration time of each and their difference: what Go adds
// over the C ABI, robust to a noisy machine. Run with -benchtime 1x.
func BenchmarkGoOverhead(b *testing.B) {
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
	c, err := cbench.New()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := &Request{ID: "bench", Model: "llama", Tokens: tokens(256)}
	goPick := func(iters int) float64 {
		t0 := time.Now()
		for i := 0; i < iters; i++ {
			d, err := s.Pick(req)
			if err != nil {
				b.Fatal(err)
			}
			_ = d.Targets[0].Address
			s.OnComplete("bench", -1)
		}
		return float64(time.Since(t0).Nanoseconds()) / float64(iters)
	}
	goCall := func(iters int) float64 {
		t0 := time.Now()
		for i := 0; i < iters; i++ {
			s.OnFirstToken("unknown")
		}
		return float64(time.Since(t0).Nanoseconds()) / float64(iters)
	}
	minOf := func(rounds int, f func() float64) float64 {
		best := math.Inf(1)
		for r := 0; r < rounds; r++ {
			best = math.Min(best, f())
		}
		return best
	}
	for n := 0; n < b.N; n++ {
		goP, cP, goC, cC := math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)
		for r := 0; r < 30; r++ {
			goP = math.Min(goP, minOf(1, func() float64 { return goPick(5000) }))
			cP = math.Min(cP, minOf(1, func() float64 { return c.Pick(5000) }))
			goC = math.Min(goC, minOf(1, func() float64 { return goCall(50000) }))
			cC = math.Min(cC, minOf(1, func() float64 { return c.Call(50000) }))
		}
		b.ReportMetric(goP, "go-ns/pick")
		b.ReportMetric(cP, "c-ns/pick")
		b.ReportMetric(goP-cP, "go-over-c-ns/pick")
		b.ReportMetric(goC-cC, "go-over-c-ns/call")
	}
}
