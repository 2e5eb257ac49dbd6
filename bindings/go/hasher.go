package llmd

/*
#include <llmd.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// HasherConfig selects the vLLM hashing a Hasher reproduces.
type HasherConfig struct {
	// VLLMVersion is the engines' release, e.g. "0.33.0"; "" means the newest supported.
	VLLMVersion string
	// Algo is vLLM's --prefix-caching-hash-algo, e.g. "sha256_cbor".
	Algo string
	// BlockSize is the number of tokens per hashed block.
	BlockSize int
	// Seed is the engines' PYTHONHASHSEED; nil when unset.
	Seed *string
}

// LoRA names the adapter a request runs with; which fields are hashed depends
// on the vLLM release.
type LoRA struct {
	ID   *int64
	Name *string
	Path *string
}

// MMItem is a multimodal item: vLLM's item hash and its placeholder tokens.
type MMItem struct {
	Identifier     string
	Offset, Length int
}

// PromptEmbeds are a request's prompt embeddings: the tensor's row-major
// bytes, RowBytes per token (vLLM hashes each block's rows).
type PromptEmbeds struct {
	Data     []byte
	RowBytes int
}

// HashExtras is everything besides tokens that changes a request's block
// hashes. The zero value is a text-only request.
type HashExtras struct {
	LoRA         *LoRA
	CacheSalt    *string
	MMItems      []MMItem
	PromptEmbeds *PromptEmbeds
}

// Hasher computes the block keys vLLM publishes for a prompt.
type Hasher struct {
	handle[*C.llmd_hasher]
}

// NewHasher validates cfg and creates a hasher.
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	var vp *C.char
	var vl C.size_t
	if cfg.VLLMVersion != "" {
		vp, vl = str(cfg.VLLMVersion)
	}
	ap, al := str(cfg.Algo)
	sp, sl := optStr(cfg.Seed)
	if cfg.BlockSize < 0 {
		return nil, &Error{Status: StatusInvalidArgument, Code: "invalid_argument", Message: "negative block size"}
	}
	var h *C.llmd_hasher
	var e *C.llmd_error
	st := C.llmd_hasher_new(vp, vl, ap, al, C.size_t(cfg.BlockSize), sp, sl, &h, &e)
	if err := takeError(st, e); err != nil {
		return nil, err
	}
	return owned(&Hasher{handle[*C.llmd_hasher]{h: h}}, (*Hasher).Close), nil
}

// BlockSize is the number of tokens per hashed block.
func (h *Hasher) BlockSize() int {
	bs := 0
	_ = h.with(func(p *C.llmd_hasher) error {
		bs = int(C.llmd_hasher_block_size(p))
		return nil
	})
	return bs
}

// BlockKeys returns the published keys of the full blocks of tokens; extras
// may be nil for a text-only request.
func (h *Hasher) BlockKeys(tokens []uint32, extras *HashExtras) ([]uint64, error) {
	var keys []uint64
	err := h.with(func(p *C.llmd_hasher) error {
		return withExtras(extras, func(x *C.llmd_hash_extras) error {
			keys = make([]uint64, len(tokens)/int(C.llmd_hasher_block_size(p)))
			var n C.size_t
			var e *C.llmd_error
			st := C.llmd_hasher_block_keys(p, (*C.uint32_t)(unsafe.SliceData(tokens)), C.size_t(len(tokens)), x,
				(*C.uint64_t)(unsafe.SliceData(keys)), C.size_t(len(keys)), &n, &e)
			keys = keys[:n]
			return takeError(st, e)
		})
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// withExtras runs f with extras as a C object (NULL for nil), freed after.
func withExtras(extras *HashExtras, f func(x *C.llmd_hash_extras) error) error {
	if extras == nil {
		return f(nil)
	}
	x, err := newExtras(extras)
	if err != nil {
		return err
	}
	defer C.llmd_hash_extras_free(x)
	return f(x)
}

// Close releases the hasher; later calls return ErrClosed. Safe to call twice.
func (h *Hasher) Close() error {
	h.close(func(p *C.llmd_hasher) { C.llmd_hasher_free(p) })
	return disowned(h)
}

func newExtras(x *HashExtras) (*C.llmd_hash_extras, error) {
	var out *C.llmd_hash_extras
	var e *C.llmd_error
	if err := takeError(C.llmd_hash_extras_new(&out, &e), e); err != nil {
		return nil, err
	}
	fail := func(st C.llmd_status, e *C.llmd_error) error {
		if err := takeError(st, e); err != nil {
			C.llmd_hash_extras_free(out)
			return err
		}
		return nil
	}
	if x.LoRA != nil {
		np, nl := optStr(x.LoRA.Name)
		pp, pl := optStr(x.LoRA.Path)
		var id *C.int64_t
		if x.LoRA.ID != nil {
			v := C.int64_t(*x.LoRA.ID)
			id = &v
		}
		if err := fail(C.llmd_hash_extras_set_lora(out, id, np, nl, pp, pl, &e), e); err != nil {
			return nil, err
		}
	}
	if x.CacheSalt != nil {
		sp, sl := optStr(x.CacheSalt)
		if err := fail(C.llmd_hash_extras_set_cache_salt(out, sp, sl, &e), e); err != nil {
			return nil, err
		}
	}
	for _, it := range x.MMItems {
		if it.Offset < 0 || it.Length < 0 {
			C.llmd_hash_extras_free(out)
			return nil, &Error{Status: StatusInvalidArgument, Code: "invalid_argument",
				Message: fmt.Sprintf("multimodal item %q: negative offset or length", it.Identifier)}
		}
		ip, il := str(it.Identifier)
		st := C.llmd_hash_extras_add_mm_item(out, ip, il, C.size_t(it.Offset), C.size_t(it.Length), &e)
		if err := fail(st, e); err != nil {
			return nil, err
		}
	}
	if pe := x.PromptEmbeds; pe != nil {
		if pe.RowBytes < 0 {
			C.llmd_hash_extras_free(out)
			return nil, &Error{Status: StatusInvalidArgument, Code: "invalid_argument", Message: "negative prompt embeds row size"}
		}
		// The bytes hold no Go pointers: C may read the slice during the call.
		st := C.llmd_hash_extras_set_prompt_embeds(out, (*C.uint8_t)(unsafe.SliceData(pe.Data)), C.size_t(len(pe.Data)),
			C.size_t(pe.RowBytes), &e)
		if err := fail(st, e); err != nil {
			return nil, err
		}
	}
	return out, nil
}
