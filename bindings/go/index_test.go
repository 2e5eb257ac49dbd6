package llmd

import (
	"errors"
	"sync"
	"testing"
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
	if _, err := NewIndex(IndexConfig{KeyMode: 77}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("err = %v", err)
	}
}
