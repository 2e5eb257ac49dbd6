package llmd

/*
#include <llmd.h>
*/
import "C"

import "unsafe"

// EventKind says what a KV-cache event reports.
type EventKind uint32

// Event kinds.
const (
	BlockStored      EventKind = C.LLMD_EVENT_KIND_BLOCK_STORED
	BlockRemoved     EventKind = C.LLMD_EVENT_KIND_BLOCK_REMOVED
	AllBlocksCleared EventKind = C.LLMD_EVENT_KIND_ALL_BLOCKS_CLEARED
)

// Tier says where an event's blocks live.
type Tier uint32

// Tiers.
const (
	TierGPU     Tier = C.LLMD_TIER_GPU
	TierCPU     Tier = C.LLMD_TIER_CPU
	TierStorage Tier = C.LLMD_TIER_STORAGE
	TierUnknown Tier = C.LLMD_TIER_UNKNOWN
)

// Event is one decoded KV-cache event.
type Event struct {
	Kind EventKind
	Tier Tier
	// Keys are the published 64-bit keys of the event's blocks.
	Keys []uint64
	// ParentKey is the key of the block before Keys[0], when the event has one.
	ParentKey *uint64
	NumTokens int
	BlockSize int64
}

// EventBatch is one decoded vLLM EventBatch payload.
type EventBatch struct {
	Timestamp float64
	// DPRank is the publisher's data-parallel rank, when the batch carries one.
	DPRank  *int64
	Events  []Event
	Skipped uint32
}

// DecodeEventBatch decodes one msgpack EventBatch payload (the third frame of
// a vLLM ZMQ KV-event message). Malformed bytes give an error matching
// ErrDecode whose Code names the defect.
func DecodeEventBatch(payload []byte) (*EventBatch, error) {
	var b *C.llmd_event_batch
	var e *C.llmd_error
	st := C.llmd_event_batch_decode((*C.uint8_t)(unsafe.SliceData(payload)), C.size_t(len(payload)), &b, &e)
	if err := takeError(st, e); err != nil {
		return nil, err
	}
	defer C.llmd_event_batch_free(b)
	out := &EventBatch{
		Timestamp: float64(C.llmd_event_batch_ts(b)),
		Skipped:   uint32(C.llmd_event_batch_skipped(b)),
	}
	var rank C.int64_t
	if C.llmd_event_batch_dp_rank(b, &rank) {
		r := int64(rank)
		out.DPRank = &r
	}
	n := int(C.llmd_event_batch_len(b))
	out.Events = make([]Event, n)
	for i := 0; i < n; i++ {
		var info C.llmd_event_info
		if err := takeError(C.llmd_event_batch_event(b, C.size_t(i), &info, &e), e); err != nil {
			return nil, err
		}
		ev := Event{
			Kind:      EventKind(info.kind),
			Tier:      Tier(info.tier),
			NumTokens: int(info.n_tokens),
			BlockSize: int64(info.block_size),
			Keys:      make([]uint64, int(info.n_blocks)),
		}
		if bool(info.has_parent) {
			p := uint64(info.parent_key)
			ev.ParentKey = &p
		}
		var got C.size_t
		st := C.llmd_event_batch_event_keys(b, C.size_t(i), (*C.uint64_t)(unsafe.SliceData(ev.Keys)),
			C.size_t(len(ev.Keys)), &got, &e)
		if err := takeError(st, e); err != nil {
			return nil, err
		}
		ev.Keys = ev.Keys[:got]
		out.Events[i] = ev
	}
	return out, nil
}
