package llmd

import (
	"runtime"
	"sync"
)

// handle owns one C handle for a Go wrapper type: calls borrow it under a
// read lock (so Close waits for calls in flight), and close frees it once.
// Every wrapper embeds one, so a method is its arguments and its C call.
// P is the C pointer type (a C handle is an incomplete type, so the
// pointer is the type argument).
type handle[P comparable] struct {
	mu sync.RWMutex
	h  P
}

// with runs f on the live handle; ErrClosed after Close.
func (x *handle[P]) with(f func(h P) error) error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var closed P
	if x.h == closed {
		return ErrClosed
	}
	return f(x.h)
}

// close frees the handle with free the first time; later calls do nothing.
func (x *handle[P]) close(free func(h P)) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var closed P
	if x.h != closed {
		free(x.h)
		x.h = closed
	}
}

// closeOutside is close for a handle whose free can take long (it waits on
// the network): the handle is taken out under the lock, so calls after it
// see ErrClosed at once, and freed after the lock is released, so callers
// of with are not held up meanwhile.
func (x *handle[P]) closeOutside(free func(h P)) {
	var closed P
	x.mu.Lock()
	h := x.h
	x.h = closed
	x.mu.Unlock()
	if h != closed {
		free(h)
	}
}

// owned sets w's finalizer to its Close, for a wrapper made around a new
// handle: a forgotten Close still releases it.
func owned[W any](w *W, closeFn func(*W) error) *W {
	runtime.SetFinalizer(w, closeFn)
	return w
}

// ownedSlow is owned for a wrapper whose Close waits on the network (a
// feed joins its threads, an exporter flushes its queue): the finalizer
// closes it on a goroutine of its own, so Go's single finalizer goroutine
// (and every other finalizer behind it) does not wait meanwhile.
func ownedSlow[W any](w *W, closeFn func(*W) error) *W {
	runtime.SetFinalizer(w, func(w *W) { go closeFn(w) })
	return w
}

// disowned clears w's finalizer once Close has released the handle.
func disowned[W any](w *W) error {
	runtime.SetFinalizer(w, nil)
	return nil
}
