package llmd

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"testing"
)

func seed(s string) *string { return &s }

func newTestHasher(t *testing.T) *Hasher {
	t.Helper()
	h, err := NewHasher(HasherConfig{VLLMVersion: "0.33.0", Algo: "sha256_cbor", BlockSize: 16, Seed: seed("42")})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func tokens(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i + 1)
	}
	return out
}

func TestHasherMatchesVLLMVector(t *testing.T) {
	h := newTestHasher(t)
	defer h.Close()
	keys, err := h.BlockKeys(tokens(40), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != 16300212363532267629 {
		t.Fatalf("keys = %v", keys)
	}
	salted, err := h.BlockKeys(tokens(32), &HashExtras{CacheSalt: seed("tenant")})
	if err != nil {
		t.Fatal(err)
	}
	if salted[0] == keys[0] {
		t.Fatal("cache salt did not change block 0")
	}
}

// Prompt embeddings hash as vLLM hashes them (the vLLM 0.19-0.30 vector
// sha256_cbor/seed=42/bs=16/extra-0.19/prompt_embeds: 32 zero tokens, a
// 32x4 float32 tensor of i/8).
func TestHasherPromptEmbedsMatchVLLMVector(t *testing.T) {
	h, err := NewHasher(HasherConfig{VLLMVersion: "0.30.0", Algo: "sha256_cbor", BlockSize: 16, Seed: seed("42")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	data := make([]byte, 0, 512)
	for i := 0; i < 128; i++ {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(i)/8))
	}
	keys, err := h.BlockKeys(make([]uint32, 32), &HashExtras{PromptEmbeds: &PromptEmbeds{Data: data, RowBytes: 16}})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != 10727237423599595005 || keys[1] != 7292349105840430816 {
		t.Fatalf("keys = %v", keys)
	}
	if _, err := h.BlockKeys(make([]uint32, 32), &HashExtras{PromptEmbeds: &PromptEmbeds{Data: data, RowBytes: -1}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative row size: %v", err)
	}
	if _, err := h.BlockKeys(make([]uint32, 32), &HashExtras{MMItems: []MMItem{{Identifier: "x", Offset: -1, Length: 1}}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative item offset: %v", err)
	}
}

func TestHasherErrors(t *testing.T) {
	_, err := NewHasher(HasherConfig{Algo: "md5", BlockSize: 16})
	if !errors.Is(err, ErrHash) {
		t.Fatalf("err = %v, want ErrHash", err)
	}
	var le *Error
	if !errors.As(err, &le) || le.Message == "" {
		t.Fatalf("err = %#v", err)
	}
	_, err = NewHasher(HasherConfig{Algo: "sha\xff", BlockSize: 16})
	if !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("err = %v, want ErrInvalidUTF8", err)
	}
	h := newTestHasher(t)
	_, err = h.BlockKeys(tokens(32), &HashExtras{MMItems: []MMItem{{Identifier: "img", Offset: 3, Length: 0}}})
	if !errors.Is(err, ErrHash) {
		t.Fatalf("err = %v, want ErrHash", err)
	}
	h.Close()
	h.Close()
	if _, err := h.BlockKeys(tokens(32), nil); !errors.Is(err, ErrClosed) || errors.Is(err, ErrNullArgument) {
		t.Fatalf("err = %v, want ErrClosed (and not ErrNullArgument)", err)
	}
}

func TestHasherConcurrent(t *testing.T) {
	h := newTestHasher(t)
	defer h.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				keys, err := h.BlockKeys(tokens(32), nil)
				if err != nil || keys[0] != 16300212363532267629 {
					t.Errorf("keys = %v, err = %v", keys, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
