package llmd

/*
#include <stdlib.h>
#include <llmd.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// arena is C memory that holds one call's descriptors and their strings.
// cgo forbids passing Go memory that itself holds Go pointers, and request
// descriptors are made of pointers; copying into C memory keeps every
// descriptor pointer-free on the Go side at the cost of a memcpy.
type arena struct {
	chunks []unsafe.Pointer
	size   int
	off    int
}

const arenaChunk = 4096

var arenas = sync.Pool{New: func() any {
	a := &arena{}
	runtime.SetFinalizer(a, (*arena).release)
	return a
}}

func getArena() *arena { return arenas.Get().(*arena) }

// put keeps the most recent chunk for the next call, when it is of the
// usual size, and frees the others (a one-off large chunk, say of a big
// PickBatch, is not kept in the pool).
func (a *arena) put() {
	if n := len(a.chunks); n > 1 || (n == 1 && a.size > arenaChunk) {
		keep := n
		if a.size <= arenaChunk {
			keep = n - 1
		}
		for _, c := range a.chunks[:keep] {
			C.free(c)
		}
		a.chunks = append(a.chunks[:0], a.chunks[keep:]...)
		if len(a.chunks) == 0 {
			a.size = 0
		}
	}
	a.off = 0
	arenas.Put(a)
}

func (a *arena) release() {
	for _, c := range a.chunks {
		C.free(c)
	}
	a.chunks = nil
}

func (a *arena) alloc(n, align int) unsafe.Pointer {
	off := (a.off + align - 1) &^ (align - 1)
	if len(a.chunks) == 0 || off+n > a.size {
		size := arenaChunk
		if n > size {
			size = n
		}
		p := C.malloc(C.size_t(size))
		if p == nil {
			panic("llmd: out of C memory for a call's arguments")
		}
		a.chunks = append(a.chunks, p)
		a.size = size
		off = 0
	}
	a.off = off + n
	return unsafe.Add(a.chunks[len(a.chunks)-1], off)
}

// str copies s; the result is never NULL (present, possibly empty).
func (a *arena) str(s string) C.llmd_str {
	p := a.alloc(len(s), 1)
	copy(unsafe.Slice((*byte)(p), len(s)), s)
	return C.llmd_str{ptr: (*C.char)(p), len: C.size_t(len(s))}
}

// optStr copies s, with "" meaning absent (NULL).
func (a *arena) optStr(s string) C.llmd_str {
	if s == "" {
		return C.llmd_str{}
	}
	return a.str(s)
}

func (a *arena) strs(items []string) (*C.llmd_str, C.size_t) {
	if len(items) == 0 {
		return nil, 0
	}
	p := a.alloc(len(items)*int(unsafe.Sizeof(C.llmd_str{})), 8)
	out := unsafe.Slice((*C.llmd_str)(p), len(items))
	for i, s := range items {
		out[i] = a.str(s)
	}
	return (*C.llmd_str)(p), C.size_t(len(items))
}

func (a *arena) pairs(m map[string]string) (*C.llmd_kv, C.size_t) {
	if len(m) == 0 {
		return nil, 0
	}
	p := a.alloc(len(m)*int(unsafe.Sizeof(C.llmd_kv{})), 8)
	out := unsafe.Slice((*C.llmd_kv)(p), len(m))
	i := 0
	for k, v := range m {
		out[i] = C.llmd_kv{key: a.str(k), value: a.str(v)}
		i++
	}
	return (*C.llmd_kv)(p), C.size_t(len(m))
}
