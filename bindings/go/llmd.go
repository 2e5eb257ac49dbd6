// Package llmd is the Go binding of libllmd, an embeddable scheduling library
// for LLM inference routers: it picks which vLLM worker serves each request
// from what it knows of every worker's KV cache and load.
//
// The package links the installed C library through pkg-config
// (`pkg-config --cflags --libs llmd`); set PKG_CONFIG_PATH to the install
// prefix's lib/pkgconfig. Every type is safe for concurrent use; handles are
// released by Close, or by a finalizer when Close was forgotten.
package llmd

/*
#cgo pkg-config: llmd
#include <stdlib.h>
#include <llmd.h>
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// Status is the C ABI's status code. Values never change meaning.
type Status uint32

// Status codes (see docs/c-api.md).
const (
	StatusOK              Status = C.LLMD_STATUS_OK
	StatusNullArgument    Status = C.LLMD_STATUS_NULL_ARGUMENT
	StatusInvalidUTF8     Status = C.LLMD_STATUS_INVALID_UTF8
	StatusInvalidArgument Status = C.LLMD_STATUS_INVALID_ARGUMENT
	StatusBufferTooSmall  Status = C.LLMD_STATUS_BUFFER_TOO_SMALL
	StatusConfig          Status = C.LLMD_STATUS_CONFIG
	StatusIO              Status = C.LLMD_STATUS_IO
	StatusHash            Status = C.LLMD_STATUS_HASH
	StatusDecode          Status = C.LLMD_STATUS_DECODE
	StatusUnknownEndpoint Status = C.LLMD_STATUS_UNKNOWN_ENDPOINT
	StatusMetricsParse    Status = C.LLMD_STATUS_METRICS_PARSE
	StatusSchedule        Status = C.LLMD_STATUS_SCHEDULE
	StatusSerialize       Status = C.LLMD_STATUS_SERIALIZE
	StatusIndex           Status = C.LLMD_STATUS_INDEX
	StatusPanic           Status = C.LLMD_STATUS_PANIC
)

// String returns the C name of the status, e.g. "LLMD_STATUS_CONFIG".
func (s Status) String() string { return C.GoString(C.llmd_status_name(C.uint32_t(s))) }

// Error is a failed call: its status, a stable lowercase code (finer than the
// status where the library knows more, e.g. "no_endpoints") and a message.
type Error struct {
	Status  Status
	Code    string
	Message string
	// Detail is the scheduler's stable numeric code for errors it raised:
	// llm-d's HTTP status for scheduling outcomes (503 no endpoints, 429
	// saturated, 400 invalid request), 1001 and up for library-side errors,
	// 0 otherwise (Python's LlmdError.detail, C's llmd_error_detail).
	Detail uint32
}

func (e *Error) Error() string { return fmt.Sprintf("llmd: %s (%s)", e.Message, e.Code) }

// Is makes errors.Is(err, llmd.ErrConfig) and friends match on the status.
// A closed handle's error matches ErrClosed only, not ErrNullArgument: a
// call racing Close is a normal shutdown, not a programming error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t.Status != e.Status {
		return false
	}
	if e.Code == ErrClosed.Code && t.Code != ErrClosed.Code {
		return false
	}
	return t.Code == "" || t.Code == e.Code
}

// Sentinel errors for errors.Is, one per status.
var (
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument}
	ErrInvalidUTF8     = &Error{Status: StatusInvalidUTF8}
	ErrConfig          = &Error{Status: StatusConfig}
	ErrIO              = &Error{Status: StatusIO}
	ErrHash            = &Error{Status: StatusHash}
	ErrDecode          = &Error{Status: StatusDecode}
	ErrUnknownEndpoint = &Error{Status: StatusUnknownEndpoint}
	ErrMetricsParse    = &Error{Status: StatusMetricsParse}
	ErrSchedule        = &Error{Status: StatusSchedule}
	ErrIndex           = &Error{Status: StatusIndex}
	ErrPanic           = &Error{Status: StatusPanic}
	ErrNullArgument    = &Error{Status: StatusNullArgument}
	ErrBufferTooSmall  = &Error{Status: StatusBufferTooSmall}
	ErrSerialize       = &Error{Status: StatusSerialize}
	// ErrClosed is returned by calls on a handle after Close (it does not
	// match ErrNullArgument).
	ErrClosed = &Error{Status: StatusNullArgument, Code: "closed", Message: "handle is closed"}
)

// jsonError is a JSON exchange with the library that failed in Go (it
// matches ErrSerialize).
func jsonError(err error) error {
	return &Error{Status: StatusSerialize, Code: "json", Message: err.Error()}
}

// Version is the run-time version of the linked library.
func Version() string { return C.GoString(C.llmd_version()) }

// takeError converts a status and its owned error object into a Go error,
// freeing the object.
func takeError(st C.llmd_status, e *C.llmd_error) error {
	if Status(st) == StatusOK {
		return nil
	}
	defer C.llmd_error_free(e)
	return &Error{
		Status:  Status(st),
		Code:    C.GoString(C.llmd_error_code(e)),
		Message: C.GoString(C.llmd_error_message(e)),
		Detail:  uint32(C.llmd_error_detail(e)),
	}
}

// str borrows a Go string as pointer + length for the duration of one call.
// The memory holds no Go pointers, so cgo's pointer rules allow passing it.
func str(s string) (*C.char, C.size_t) {
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

// emptyByte backs present-but-empty optional strings, which must not be NULL
// (NULL means absent).
var emptyByte = [1]byte{0}

// optStr is str for optional arguments: nil means absent.
func optStr(s *string) (*C.char, C.size_t) {
	if s == nil {
		return nil, 0
	}
	if len(*s) == 0 {
		return (*C.char)(unsafe.Pointer(&emptyByte[0])), 0
	}
	return str(*s)
}

// bytesPtr borrows a byte slice's data for one call (nil when empty).
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

// negative is the error for a duration argument below zero.
func negative(what string, d time.Duration) error {
	return &Error{Status: StatusInvalidArgument, Code: "invalid_argument", Message: fmt.Sprintf("%s must not be negative, got %v", what, d)}
}
