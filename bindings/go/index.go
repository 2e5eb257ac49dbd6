package llmd

/*
#include <llmd.h>
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// KeyMode says how index keys are formed.
type KeyMode uint32

// Key modes.
const (
	// RouterKeys re-hashes the events' tokens with the router's own chain;
	// works whatever seed or algorithm the engines use.
	RouterKeys KeyMode = C.LLMD_KEY_MODE_ROUTER_KEYS
	// Approximate has no events: entries come from RecordRouting.
	Approximate KeyMode = C.LLMD_KEY_MODE_APPROXIMATE
	// EngineParity uses vLLM's own keys, computed with IndexConfig.Hasher.
	EngineParity KeyMode = C.LLMD_KEY_MODE_ENGINE_PARITY
)

// IndexConfig configures NewIndex; zero fields take the defaults.
type IndexConfig struct {
	KeyMode KeyMode
	// BlockSize in tokens for the router and approximate modes (default 16);
	// in engine parity 0 or the hasher's (another is ErrInvalidArgument).
	BlockSize int
	// Hasher for EngineParity (copied; may be closed afterwards).
	Hasher *Hasher
	// CapacityBlocks bounds the table (memory is fixed at creation).
	CapacityBlocks int
	MaxEndpoints   int
	SpeculativeTTL time.Duration
	// SpeculativeCapacity bounds live speculative entries (default 65536).
	SpeculativeCapacity int
	// ApproxCapacityPerEndpoint: blocks remembered per endpoint in the
	// approximate mode (llm-d's lruCapacityPerServer, default 31250).
	ApproxCapacityPerEndpoint int
	// EngineMapCapacityPerEndpoint: engine-key mappings kept per endpoint in
	// the router-key mode (default 2^18).
	EngineMapCapacityPerEndpoint int
	// TierWeights replaces the default per-tier block scores when set.
	TierWeights *TierWeights
}

// TierWeights scores a matched block by the tier it is held in.
type TierWeights struct {
	GPU, CPU, Storage, Speculative float64
}

// EndpointMatch is one endpoint's longest consecutive prefix match.
type EndpointMatch struct {
	Endpoint          uint16
	ConsecutiveBlocks uint32
	// WeightedScore weights the blocks by tier (GPU 1.0, CPU 0.8, ...).
	WeightedScore float64
}

// IndexStats are index-wide statistics.
type IndexStats struct {
	Entries, Capacity, Holdings, TableBytes, Evictions, Endpoints uint64
}

// Index is the concurrent KV-block index on its own, for hosts that score
// prefixes themselves. Safe for concurrent use.
type Index struct {
	handle[*C.llmd_index]
}

// NewIndex builds an index (a negative SpeculativeTTL matches
// ErrInvalidArgument).
func NewIndex(cfg IndexConfig) (*Index, error) {
	if cfg.SpeculativeTTL < 0 {
		return nil, negative("SpeculativeTTL", cfg.SpeculativeTTL)
	}
	// A negative size would reach C as a huge one.
	for _, f := range []struct {
		name string
		v    int
	}{
		{"BlockSize", cfg.BlockSize}, {"CapacityBlocks", cfg.CapacityBlocks},
		{"MaxEndpoints", cfg.MaxEndpoints}, {"SpeculativeCapacity", cfg.SpeculativeCapacity},
		{"ApproxCapacityPerEndpoint", cfg.ApproxCapacityPerEndpoint},
		{"EngineMapCapacityPerEndpoint", cfg.EngineMapCapacityPerEndpoint},
	} {
		if f.v < 0 {
			return nil, &Error{Status: StatusInvalidArgument, Code: "invalid_argument",
				Message: fmt.Sprintf("IndexConfig.%s must not be negative, got %d", f.name, f.v)}
		}
	}
	c := C.llmd_index_config{
		key_mode:           C.uint32_t(cfg.KeyMode),
		block_size:         C.size_t(cfg.BlockSize),
		capacity_blocks:    C.size_t(cfg.CapacityBlocks),
		max_endpoints:      C.size_t(cfg.MaxEndpoints),
		speculative_ttl_ns: C.uint64_t(cfg.SpeculativeTTL.Nanoseconds()),

		speculative_capacity:             C.size_t(cfg.SpeculativeCapacity),
		approx_capacity_per_endpoint:     C.size_t(cfg.ApproxCapacityPerEndpoint),
		engine_map_capacity_per_endpoint: C.size_t(cfg.EngineMapCapacityPerEndpoint),
	}
	if w := cfg.TierWeights; w != nil {
		c.has_tier_weights = 1
		c.gpu_weight = C.double(w.GPU)
		c.cpu_weight = C.double(w.CPU)
		c.storage_weight = C.double(w.Storage)
		c.speculative_weight = C.double(w.Speculative)
	}
	if cfg.Hasher != nil {
		cfg.Hasher.mu.RLock()
		defer cfg.Hasher.mu.RUnlock()
		if cfg.Hasher.h == nil {
			return nil, fmt.Errorf("IndexConfig.Hasher: %w", ErrClosed)
		}
		c.hasher = cfg.Hasher.h
	}
	var h *C.llmd_index
	var e *C.llmd_error
	if err := takeError(C.llmd_index_new(&c, &h, &e), e); err != nil {
		return nil, err
	}
	return owned(&Index{handle[*C.llmd_index]{h: h}}, (*Index).Close), nil
}

// Close releases the index; later calls return ErrClosed.
func (ix *Index) Close() error {
	ix.close(func(h *C.llmd_index) { C.llmd_index_free(h) })
	return disowned(ix)
}

// RegisterEndpoint returns the endpoint's dense id, registering it if new.
func (ix *Index) RegisterEndpoint(name string) (uint16, error) {
	var id C.uint16_t
	err := ix.with(func(h *C.llmd_index) error {
		np, nl := str(name)
		var e *C.llmd_error
		return takeError(C.llmd_index_register_endpoint(h, np, nl, &id, &e), e)
	})
	return uint16(id), err
}

// RemoveEndpoint drops an endpoint and everything it holds.
func (ix *Index) RemoveEndpoint(id uint16) error {
	return ix.with(func(h *C.llmd_index) error {
		var e *C.llmd_error
		return takeError(C.llmd_index_remove_endpoint(h, C.uint16_t(id), &e), e)
	})
}

// Apply decodes a KV-event payload published by endpoint id (serving model)
// and applies it; it returns the number of blocks stored (ApplyReport gives
// every count).
func (ix *Index) Apply(id uint16, model string, payload []byte) (stored uint32, err error) {
	r, err := ix.ApplyReport(id, model, payload)
	return r.Stored, err
}

// IndexApplyReport counts what one batch did to an Index.
type IndexApplyReport struct {
	// Stored and Removed count (block, tier) entries set and cleared;
	// Cleared the AllBlocksCleared events applied.
	Stored, Removed, Cleared uint32
	// Unplaceable: blocks that could not be placed (router keys: unknown
	// parent or engine key, a parent ending inside a router block, too few
	// tokens for a router block). Not counted in Stored.
	Unplaceable uint32
	// UnknownMedia: events on a medium other than GPU, CPU or storage.
	UnknownMedia uint32
	// Ignored: events of an endpoint being removed, or of an index in
	// approximate mode.
	Ignored uint32
	// ParityChecks and ParityMismatches: engine parity's self-checks of
	// parent-less BlockStored events, and those whose key differed (the
	// hasher's seed, algorithm or block size is wrong).
	ParityChecks, ParityMismatches uint32
	// Superseded: in a batch with more than one AllBlocksCleared, the events
	// before the last one, which it erases (in none of the other counts).
	Superseded uint32
}

// ApplyReport decodes a KV-event payload published by endpoint id (serving
// model), applies it and returns what it did.
func (ix *Index) ApplyReport(id uint16, model string, payload []byte) (IndexApplyReport, error) {
	var r IndexApplyReport
	err := ix.with(func(h *C.llmd_index) error {
		var b *C.llmd_event_batch
		var e *C.llmd_error
		st := C.llmd_event_batch_decode((*C.uint8_t)(bytesPtr(payload)), C.size_t(len(payload)), &b, &e)
		if err := takeError(st, e); err != nil {
			return err
		}
		defer C.llmd_event_batch_free(b)
		var rep C.llmd_index_apply_report
		mp, ml := str(model)
		if err := takeError(C.llmd_index_apply_batch(h, C.uint16_t(id), mp, ml, b, &rep, &e), e); err != nil {
			return err
		}
		r = IndexApplyReport{
			Stored:           uint32(rep.stored),
			Removed:          uint32(rep.removed),
			Cleared:          uint32(rep.cleared),
			Unplaceable:      uint32(rep.unplaceable),
			UnknownMedia:     uint32(rep.unknown_media),
			Ignored:          uint32(rep.ignored),
			ParityChecks:     uint32(rep.parity_checks),
			ParityMismatches: uint32(rep.parity_mismatches),
			Superseded:       uint32(rep.superseded),
		}
		return nil
	})
	return r, err
}

// PromptKeys returns the keys of a prompt's full blocks in the index's mode.
func (ix *Index) PromptKeys(model string, tokens []uint32, extras *HashExtras) ([]uint64, error) {
	var keys []uint64
	err := ix.with(func(h *C.llmd_index) error {
		return withExtras(extras, func(x *C.llmd_hash_extras) error {
			keys = make([]uint64, len(tokens))
			var n C.size_t
			var e *C.llmd_error
			mp, ml := str(model)
			st := C.llmd_index_prompt_keys(h, mp, ml, (*C.uint32_t)(unsafe.SliceData(tokens)), C.size_t(len(tokens)), x,
				(*C.uint64_t)(unsafe.SliceData(keys)), C.size_t(len(keys)), &n, &e)
			if err := takeError(st, e); err != nil {
				return err
			}
			keys = keys[:n]
			return nil
		})
	})
	return keys, err
}

// MatchPrefix returns every endpoint's longest consecutive prefix match of
// keys (endpoints without a match are left out).
func (ix *Index) MatchPrefix(model string, keys []uint64) ([]EndpointMatch, error) {
	var out []EndpointMatch
	err := ix.with(func(h *C.llmd_index) error {
		var st C.llmd_index_stats
		var e *C.llmd_error
		if err := takeError(C.llmd_index_get_stats(h, &st, &e), e); err != nil {
			return err
		}
		// Endpoints may register (or be in removal) meanwhile: leave room for
		// a few more, and grow the buffer while that is not enough.
		buf := make([]C.llmd_endpoint_match, int(st.endpoints)+8)
		var n C.size_t
		mp, ml := str(model)
		for {
			rc := C.llmd_index_match_prefix(h, mp, ml, (*C.uint64_t)(unsafe.SliceData(keys)), C.size_t(len(keys)),
				unsafe.SliceData(buf), C.size_t(len(buf)), &n, &e)
			if rc == C.LLMD_STATUS_BUFFER_TOO_SMALL && len(buf) < 1<<17 {
				C.llmd_error_free(e)
				e = nil
				buf = make([]C.llmd_endpoint_match, 2*len(buf))
				continue
			}
			if err := takeError(rc, e); err != nil {
				return err
			}
			break
		}
		out = make([]EndpointMatch, int(n))
		for i := range out {
			m := buf[i]
			out[i] = EndpointMatch{uint16(m.endpoint), uint32(m.consecutive_blocks), float64(m.weighted_score)}
		}
		return nil
	})
	return out, err
}

// RecordRouting records that a prompt with keys went to endpoint id at now
// on the index's clock (a negative now matches ErrInvalidArgument).
func (ix *Index) RecordRouting(id uint16, model string, keys []uint64, now time.Duration) error {
	if now < 0 {
		return negative("now", now)
	}
	return ix.with(func(h *C.llmd_index) error {
		var e *C.llmd_error
		mp, ml := str(model)
		rc := C.llmd_index_record_routing(h, C.uint16_t(id), mp, ml, (*C.uint64_t)(unsafe.SliceData(keys)),
			C.size_t(len(keys)), C.uint64_t(now.Nanoseconds()), &e)
		return takeError(rc, e)
	})
}

// ClearEndpoint drops every block endpoint id holds (its engine restarted);
// the slot stays registered. An id not registered matches
// ErrUnknownEndpoint.
func (ix *Index) ClearEndpoint(id uint16) error {
	return ix.with(func(h *C.llmd_index) error {
		var e *C.llmd_error
		return takeError(C.llmd_index_clear_endpoint(h, C.uint16_t(id), &e), e)
	})
}

// Tick expires the speculative entries whose lifetime ended by now (the
// clock RecordRouting is given); lookups read no clock, so call it
// periodically. A negative now matches ErrInvalidArgument.
func (ix *Index) Tick(now time.Duration) error {
	if now < 0 {
		return negative("now", now)
	}
	return ix.with(func(h *C.llmd_index) error {
		var e *C.llmd_error
		return takeError(C.llmd_index_tick(h, C.uint64_t(now.Nanoseconds()), &e), e)
	})
}

// Stats returns index-wide statistics.
func (ix *Index) Stats() (IndexStats, error) {
	var st C.llmd_index_stats
	err := ix.with(func(h *C.llmd_index) error {
		var e *C.llmd_error
		return takeError(C.llmd_index_get_stats(h, &st, &e), e)
	})
	return IndexStats{uint64(st.entries), uint64(st.capacity), uint64(st.holdings), uint64(st.table_bytes),
		uint64(st.evictions), uint64(st.endpoints)}, err
}
