package llmd

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func storedPrefix() []byte {
	// testBatch's first event only: blocks of tokens 1..32 stored on the GPU.
	b := append(append([]byte{}, testBatch[:10]...), 0x91)
	b = append(b, testBatch[11:70]...)
	return append(b, 0x00)
}

func TestIndexMatchesIngestedBlocks(t *testing.T) {
	ix, err := NewIndex(IndexConfig{CapacityBlocks: 4096, MaxEndpoints: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	a, _ := ix.RegisterEndpoint("pod-a")
	b, err := ix.RegisterEndpoint("pod-b")
	if err != nil || a == b {
		t.Fatalf("ids %d %d err %v", a, b, err)
	}
	if n, err := ix.Apply(b, "llama", storedPrefix()); err != nil || n != 2 {
		t.Fatalf("stored %d err %v", n, err)
	}
	keys, err := ix.PromptKeys("llama", tokens(48), nil)
	if err != nil || len(keys) != 3 {
		t.Fatalf("keys %v err %v", keys, err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				m, err := ix.MatchPrefix("llama", keys)
				if err != nil || len(m) != 1 || m[0].Endpoint != b || m[0].ConsecutiveBlocks != 2 {
					t.Errorf("matches %+v err %v", m, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st, err := ix.Stats()
	if err != nil || st.Endpoints != 2 || st.Entries < 2 {
		t.Fatalf("stats %+v err %v", st, err)
	}
	// The whole test batch: its stored event again (held: nothing new), a
	// removal on CPU (not held there) and a clear.
	if r, err := ix.ApplyReport(b, "llama", testBatch); err != nil ||
		r != (IndexApplyReport{Cleared: 1}) {
		t.Fatalf("report %+v err %v", r, err)
	}
	if _, err := ix.Apply(b, "llama", testBatch[:12]); !errors.Is(err, ErrDecode) {
		t.Fatalf("err = %v", err)
	}
	if err := ix.RemoveEndpoint(b); err != nil {
		t.Fatal(err)
	}
	if m, _ := ix.MatchPrefix("llama", keys); len(m) != 0 {
		t.Fatalf("matches after removal %+v", m)
	}
}

func TestIndexModes(t *testing.T) {
	ix, err := NewIndex(IndexConfig{KeyMode: Approximate, CapacityBlocks: 4096, MaxEndpoints: 8})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ix.RegisterEndpoint("pod-a")
	keys, _ := ix.PromptKeys("llama", tokens(64), nil)
	if err := ix.RecordRouting(a, "llama", keys[:2], 1000); err != nil {
		t.Fatal(err)
	}
	if m, err := ix.MatchPrefix("llama", keys); err != nil || len(m) != 1 || m[0].ConsecutiveBlocks != 2 {
		t.Fatalf("matches %+v err %v", m, err)
	}
	ix.Close()
	if _, err := ix.Stats(); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}

	h := newTestHasher(t)
	ep, err := NewIndex(IndexConfig{KeyMode: EngineParity, Hasher: h, CapacityBlocks: 4096, MaxEndpoints: 8})
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if keys, err := ep.PromptKeys("llama", tokens(32), nil); err != nil || keys[0] != 16300212363532267629 {
		t.Fatalf("keys %v err %v", keys, err)
	}
	if _, err := NewIndex(IndexConfig{KeyMode: EngineParity}); err == nil {
		t.Fatal("engine parity without a hasher accepted")
	}
	// A closed hasher is named as such, not a NULL argument.
	if _, err := NewIndex(IndexConfig{KeyMode: EngineParity, Hasher: h}); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed hasher: err = %v", err)
	}
	if _, err := NewIndex(IndexConfig{KeyMode: 77}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("err = %v", err)
	}
	// Negative durations are refused, not wrapped into huge unsigned ones.
	if _, err := NewIndex(IndexConfig{KeyMode: Approximate, BlockSize: 16, SpeculativeTTL: -time.Second}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative TTL: err = %v", err)
	}
	ap, err := NewIndex(IndexConfig{KeyMode: Approximate, BlockSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer ap.Close()
	if err := ap.RecordRouting(0, "llama", []uint64{1}, -time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative now: err = %v", err)
	}
}

func TestIndexConfigCapacitiesAndWeights(t *testing.T) {
	// An approximate index remembering two blocks per endpoint keeps the
	// two most recently routed: the prompt's first blocks are gone.
	small, err := NewIndex(IndexConfig{KeyMode: Approximate, ApproxCapacityPerEndpoint: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	a, _ := small.RegisterEndpoint("pod-a")
	keys, _ := small.PromptKeys("llama", tokens(64), nil)
	if err := small.RecordRouting(a, "llama", keys, 0); err != nil {
		t.Fatal(err)
	}
	if m, err := small.MatchPrefix("llama", keys); err != nil || len(m) != 0 {
		t.Fatalf("matches %+v err %v", m, err)
	}
	// Speculative entries score with the configured speculative weight.
	w, err := NewIndex(IndexConfig{TierWeights: &TierWeights{GPU: 1, CPU: 0.8, Storage: 0.5, Speculative: 0.25}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	b, _ := w.RegisterEndpoint("pod-b")
	keys, _ = w.PromptKeys("llama", tokens(64), nil)
	if err := w.RecordRouting(b, "llama", keys[:2], 0); err != nil {
		t.Fatal(err)
	}
	if m, err := w.MatchPrefix("llama", keys); err != nil || len(m) != 1 || m[0].WeightedScore != 0.5 {
		t.Fatalf("matches %+v err %v", m, err)
	}
	// They expire at a Tick past their lifetime (2 s by default).
	if err := w.Tick(time.Second); err != nil {
		t.Fatal(err)
	}
	if m, _ := w.MatchPrefix("llama", keys); len(m) != 1 {
		t.Fatalf("expired early: %+v", m)
	}
	if err := w.Tick(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	if m, _ := w.MatchPrefix("llama", keys); len(m) != 0 {
		t.Fatalf("not expired: %+v", m)
	}
	if err := w.Tick(-time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative now: %v", err)
	}
	// ClearEndpoint drops what an endpoint holds.
	if err := w.RecordRouting(b, "llama", keys[:2], 0); err != nil {
		t.Fatal(err)
	}
	if err := w.ClearEndpoint(b); err != nil {
		t.Fatal(err)
	}
	if m, _ := w.MatchPrefix("llama", keys); len(m) != 0 {
		t.Fatalf("not cleared: %+v", m)
	}
	if err := w.ClearEndpoint(999); !errors.Is(err, ErrUnknownEndpoint) {
		t.Fatalf("unknown slot: %v", err)
	}
	// Negative sizes are refused rather than read as huge ones.
	for _, cfg := range []IndexConfig{{SpeculativeCapacity: -1}, {ApproxCapacityPerEndpoint: -1}, {CapacityBlocks: -1}} {
		if _, err := NewIndex(cfg); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("%+v: %v", cfg, err)
		}
	}
	var le *Error
	if _, err := NewIndex(IndexConfig{TierWeights: &TierWeights{GPU: -1}}); !errors.As(err, &le) || le.Status != StatusIndex {
		t.Fatalf("negative weight: %v", err)
	}
}
