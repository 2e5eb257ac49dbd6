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
	s := overheadScheduler(b)
	defer s.Close()
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
	s := overheadScheduler(b)
	defer s.Close()
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

// BenchmarkGoOverheadOpenAI is BenchmarkGoOverhead for PickOpenAI: a short
// chat body tokenized with the tiny test tokenizer ("tokenized"), and the
// same body for a model without a tokenizer ("estimated": a cheaper pick,
// so the boundary's cost stands out of the noise), Go vs the same loop in C.
func BenchmarkGoOverheadOpenAI(b *testing.B) {
	s := overheadScheduler(b)
	defer s.Close()
	tok, err := TokenizerFromDir(tinyTokenizer)
	if err != nil {
		b.Fatal(err)
	}
	defer tok.Close()
	if err := s.SetTokenizer("llama", tok); err != nil {
		b.Fatal(err)
	}
	c, err := cbench.NewOpenAI(tinyTokenizer)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := []byte(`{"model": "llama", "messages": [{"role": "system", "content": "w1 w2"}, {"role": "user", "content": "w1 w2 w1 w2"}], "max_tokens": 64}`)
	// Schedulers without a tokenizer for the estimated case.
	plainGo := overheadScheduler(b)
	defer plainGo.Close()
	plainC, err := cbench.New()
	if err != nil {
		b.Fatal(err)
	}
	defer plainC.Close()
	goPick := func(s *Scheduler, iters int) float64 {
		t0 := time.Now()
		for i := 0; i < iters; i++ {
			d, err := s.PickOpenAI("bench", "/v1/chat/completions", body, nil, false)
			if err != nil {
				b.Fatal(err)
			}
			_ = d.Targets[0].Address
			s.OnComplete("bench", -1)
		}
		return float64(time.Since(t0).Nanoseconds()) / float64(iters)
	}
	for n := 0; n < b.N; n++ {
		goT, cT, goE, cE := math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)
		for r := 0; r < 30; r++ {
			goT = math.Min(goT, goPick(s, 2000))
			cT = math.Min(cT, c.PickOpenAI(body, 2000))
			goE = math.Min(goE, goPick(plainGo, 5000))
			cE = math.Min(cE, plainC.PickOpenAI(body, 5000))
		}
		if cT < 0 || cE < 0 {
			b.Fatal("C loop failed")
		}
		b.ReportMetric(cT, "c-ns/tokenized")
		b.ReportMetric(goT-cT, "go-over-c-ns/tokenized")
		b.ReportMetric(cE, "c-ns/estimated")
		b.ReportMetric(goE-cE, "go-over-c-ns/estimated")
	}
}

// overheadScheduler is the overhead benchmarks' scenario (the C loop's
// setup): llm-d's default pipeline, 4 endpoints serving llama with metrics.
func overheadScheduler(b *testing.B) *Scheduler {
	s, err := NewScheduler("", WithSeed(1))
	if err != nil {
		b.Fatal(err)
	}
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
	return s
}
