package main

import (
	"bytes"
	"encoding/json"
	"io"

	"llmd.dev/llmd"
)

// maxKept bounds what a reply holds to read the engine's usage from: a
// non-streamed body, or one streamed event still without its end.
const maxKept = 8 << 20

// reply is a backend's successful answer on its way to the client. It tells
// the scheduler what the answer shows: the first token and each later
// streamed chunk, a vLLM error event (the reply is then a failure, though
// forwarded), and the engine's usage with its cached tokens. The router
// asks every stream for its usage; the usage-only chunk is dropped when the
// client did not ask for it.
type reply struct {
	body   io.ReadCloser
	f      *inflight
	stream bool
	// in holds streamed bytes not yet read as whole events, out the events
	// read and waiting for the client, kept a non-streamed body.
	in, out, kept []byte
	// blind is set when a body or an event outgrew maxKept, or the body is
	// encoded: the rest passes as it is and its usage is unknown.
	blind   bool
	err     error
	scratch [4096]byte
}

func (r *reply) Close() error { return r.body.Close() }

func (r *reply) Read(p []byte) (int, error) {
	if !r.stream || r.blind {
		return r.readWhole(p)
	}
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		n, err := r.body.Read(r.scratch[:])
		r.in = append(r.in, r.scratch[:n]...)
		r.events()
		if err != nil {
			// A stream cut short passes on its unfinished event as it is.
			r.out, r.in, r.err = append(r.out, r.in...), nil, err
		} else if len(r.in) > maxKept {
			r.out, r.in, r.blind = append(r.out, r.in...), nil, true
			r.f.usage = llmd.UnknownUsage()
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	if len(r.out) == 0 {
		r.out = nil
	}
	return n, nil
}

// readWhole passes a body through, keeping it (up to maxKept) to read its
// usage at the end; its first byte is the first token (a non-streamed
// reply's TTFT is the whole request).
func (r *reply) readWhole(p []byte) (int, error) {
	if len(r.out) > 0 { // what was left of a stream that went blind
		n := copy(p, r.out)
		r.out = r.out[n:]
		return n, nil
	}
	n, err := r.body.Read(p)
	if n > 0 {
		r.f.firstToken()
		if !r.blind && len(r.kept)+n <= maxKept {
			r.kept = append(r.kept, p[:n]...)
		} else {
			r.blind, r.kept = true, nil
		}
	}
	if err == io.EOF && !r.stream && !r.blind {
		var msg message
		if json.Unmarshal(r.kept, &msg) == nil {
			r.f.usage = msg.Usage.engine()
		}
		r.kept = nil
	}
	return n, err
}

// events moves each whole event of in to out, learning from it.
func (r *reply) events() {
	for {
		i, n := eventEnd(r.in)
		if i < 0 {
			return
		}
		event := r.in[:i+n]
		if r.learn(event[:i]) {
			r.out = append(r.out, event...)
		}
		r.in = r.in[i+n:]
	}
}

// eventEnd finds the first blank line that ends an SSE event (lines end in
// LF, CRLF or CR): its index and length; -1 when there is none yet.
func eventEnd(b []byte) (int, int) {
	best, size := -1, 0
	for _, sep := range [][]byte{[]byte("\n\n"), []byte("\r\n\r\n"), []byte("\r\r")} {
		if i := bytes.Index(b, sep); i >= 0 && (best < 0 || i < best) {
			best, size = i, len(sep)
		}
	}
	return best, size
}

// learn reads one event; false drops it (the usage chunk the client did
// not ask for).
func (r *reply) learn(event []byte) bool {
	data, ok := bytes.CutPrefix(bytes.TrimLeft(event, "\r\n"), []byte("data:"))
	data = bytes.TrimSpace(data)
	if !ok || bytes.Equal(data, []byte("[DONE]")) {
		return true
	}
	var msg message
	if json.Unmarshal(data, &msg) != nil {
		return true
	}
	if msg.Usage != nil {
		r.f.usage = msg.Usage.engine()
	}
	switch {
	case (len(msg.Error) > 0 && !bytes.Equal(msg.Error, []byte("null"))) || msg.Object == "error":
		r.f.failed = true
	case len(msg.Choices) > 0:
		if r.f.first.Load() {
			_, _ = r.f.sched.OnTokens(r.f.id, 1)
		} else {
			r.f.firstToken()
		}
	case msg.Usage != nil && !r.f.clientUsage:
		return false
	}
	return true
}

// message is the part of an OpenAI reply or stream chunk the router reads.
type message struct {
	Object  string            `json:"object"`
	Choices []json.RawMessage `json:"choices"`
	Usage   *usage            `json:"usage"`
	Error   json.RawMessage   `json:"error"`
}

type usage struct {
	PromptTokens        *int64 `json:"prompt_tokens"`
	CompletionTokens    *int64 `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens *int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// engine is the usage as the scheduler takes it: -1 for what is missing.
func (u *usage) engine() llmd.Usage {
	out := llmd.UnknownUsage()
	if u == nil {
		return out
	}
	if u.PromptTokens != nil {
		out.PromptTokens = *u.PromptTokens
	}
	if u.CompletionTokens != nil {
		out.CompletionTokens = *u.CompletionTokens
	}
	if d := u.PromptTokensDetails; d != nil && d.CachedTokens != nil {
		out.CachedTokens = *d.CachedTokens
	}
	return out
}
