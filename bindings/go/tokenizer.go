package llmd

/*
#include <llmd.h>
*/
import "C"

import (
	"encoding/json"
	"time"
	"unsafe"
)

// Tokenizer computes the engine's exact token ids in-process from a local
// model directory (tokenizer.json, tokenizer_config.json,
// chat_template.jinja): completions prompts, and chat messages rendered
// with the model's template the way vLLM's chat completions render them.
// It is safe for concurrent use; Close releases it.
type Tokenizer struct {
	handle[*C.llmd_tokenizer]
}

// TokenizerFromDir loads a model directory; nothing is downloaded. A
// missing or malformed file matches ErrInvalidArgument with Code
// "tokenizer_file".
func TokenizerFromDir(dir string) (*Tokenizer, error) {
	dp, dl := str(dir)
	var h *C.llmd_tokenizer
	var e *C.llmd_error
	if err := takeError(C.llmd_tokenizer_from_dir(dp, dl, &h, &e), e); err != nil {
		return nil, err
	}
	return owned(&Tokenizer{handle[*C.llmd_tokenizer]{h: h}}, (*Tokenizer).Close), nil
}

// EngineChat is how the engine was started, for a tokenizer that renders
// chat as it does: vLLM's --chat-template and --default-chat-template-kwargs.
type EngineChat struct {
	// ChatTemplate is a template file, or the template itself when it has
	// '{', '}' or a line break, as vLLM reads the flag; "" keeps the model
	// directory's templates.
	ChatTemplate string
	// DefaultKwargs sit under every request's own chat_template_kwargs; nil
	// sets none.
	DefaultKwargs map[string]any
}

// TokenizerFromDirEngine is TokenizerFromDir rendering as the engine was
// started (EngineChat). A template that cannot be read or parsed, or
// kwargs naming chat_template, messages or conversation, match
// ErrInvalidArgument.
func TokenizerFromDirEngine(dir string, engine EngineChat) (*Tokenizer, error) {
	var kw *string
	if engine.DefaultKwargs != nil {
		b, err := json.Marshal(engine.DefaultKwargs)
		if err != nil {
			return nil, jsonError(err)
		}
		s := string(b)
		kw = &s
	}
	var tpl *string
	if engine.ChatTemplate != "" {
		tpl = &engine.ChatTemplate
	}
	dp, dl := str(dir)
	tp, tl := optStr(tpl)
	kp, kl := optStr(kw)
	var h *C.llmd_tokenizer
	var e *C.llmd_error
	if err := takeError(C.llmd_tokenizer_from_dir_engine(dp, dl, tp, tl, kp, kl, &h, &e), e); err != nil {
		return nil, err
	}
	return owned(&Tokenizer{handle[*C.llmd_tokenizer]{h: h}}, (*Tokenizer).Close), nil
}

func takeTokens(p *C.llmd_tokens) []uint32 {
	n := int(C.llmd_tokens_len(p))
	out := make([]uint32, n)
	if n > 0 {
		copy(out, unsafe.Slice((*uint32)(unsafe.Pointer(C.llmd_tokens_data(p))), n))
	}
	C.llmd_tokens_free(p)
	return out
}

// Encode returns the ids of text (completions prompts add special tokens).
func (t *Tokenizer) Encode(text string, addSpecialTokens bool) ([]uint32, error) {
	var ids []uint32
	err := t.with(func(h *C.llmd_tokenizer) error {
		tp, tl := str(text)
		var out *C.llmd_tokens
		var e *C.llmd_error
		if err := takeError(C.llmd_tokenizer_encode(h, tp, tl, C.bool(addSpecialTokens), &out, &e), e); err != nil {
			return err
		}
		ids = takeTokens(out)
		return nil
	})
	return ids, err
}

// EncodeChat returns the ids vLLM's chat completions feed the engine for
// messagesJSON (an OpenAI messages array); toolsJSON and kwargsJSON
// (chat_template_kwargs) may be "". The request's other fields
// (continue_final_message, add_special_tokens, truncation, documents) are
// read by EncodeOpenAI, which takes the whole body.
func (t *Tokenizer) EncodeChat(messagesJSON string, addGenerationPrompt bool, toolsJSON, kwargsJSON string) ([]uint32, error) {
	var ids []uint32
	err := t.with(func(h *C.llmd_tokenizer) error {
		mp, ml := str(messagesJSON)
		tp, tl := optStr(nonEmpty(toolsJSON))
		kp, kl := optStr(nonEmpty(kwargsJSON))
		var out *C.llmd_tokens
		var e *C.llmd_error
		st := C.llmd_tokenizer_encode_chat(h, mp, ml, C.bool(addGenerationPrompt), tp, tl, kp, kl, &out, &e)
		if err := takeError(st, e); err != nil {
			return err
		}
		ids = takeTokens(out)
		return nil
	})
	return ids, err
}

// RenderChat returns the prompt string vLLM's chat completions render from
// messagesJSON (arguments as EncodeChat).
func (t *Tokenizer) RenderChat(messagesJSON string, addGenerationPrompt bool, toolsJSON, kwargsJSON string) (string, error) {
	var text string
	err := t.with(func(h *C.llmd_tokenizer) error {
		mp, ml := str(messagesJSON)
		tp, tl := optStr(nonEmpty(toolsJSON))
		kp, kl := optStr(nonEmpty(kwargsJSON))
		var out *C.llmd_string
		var e *C.llmd_error
		st := C.llmd_tokenizer_render_chat(h, mp, ml, C.bool(addGenerationPrompt), tp, tl, kp, kl, &out, &e)
		if err := takeError(st, e); err != nil {
			return err
		}
		text = takeString(out)
		return nil
	})
	return text, err
}

// EncodeOpenAI returns the ids vLLM feeds the engine for an OpenAI request
// body sent to path (/v1/completions or /v1/chat/completions), as the
// gateway received it: every body field that reaches the template or the
// tokenizer applies (tools, chat_template_kwargs, documents,
// reasoning_effort, add_special_tokens, ...). A malformed body matches
// ErrInvalidArgument with Code "request", naming the field.
func (t *Tokenizer) EncodeOpenAI(path string, body []byte) ([]uint32, error) {
	var ids []uint32
	err := t.with(func(h *C.llmd_tokenizer) error {
		pp, pl := str(path)
		var out *C.llmd_tokens
		var e *C.llmd_error
		st := C.llmd_tokenizer_encode_openai(h, pp, pl, (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(body))), C.size_t(len(body)), &out, &e)
		if err := takeError(st, e); err != nil {
			return err
		}
		ids = takeTokens(out)
		return nil
	})
	return ids, err
}

// ChatSession is one conversation's tokenization cache (Tokenizer.Session):
// each EncodeChat gives the ids Tokenizer.EncodeChat gives, tokenizing only
// what follows the previous turn. It keeps its own reference to the
// tokenizer; calls on one session are serialized. Close releases it.
type ChatSession struct {
	handle[*C.llmd_chat_session]
}

// Session starts an empty session for one conversation.
func (t *Tokenizer) Session() (*ChatSession, error) {
	var cs *ChatSession
	err := t.with(func(h *C.llmd_tokenizer) error {
		var out *C.llmd_chat_session
		var e *C.llmd_error
		if err := takeError(C.llmd_chat_session_new(h, &out, &e), e); err != nil {
			return err
		}
		cs = owned(&ChatSession{handle[*C.llmd_chat_session]{h: out}}, (*ChatSession).Close)
		return nil
	})
	return cs, err
}

// EncodeChat returns the ids of the whole conversation messagesJSON
// (arguments as Tokenizer.EncodeChat).
func (s *ChatSession) EncodeChat(messagesJSON string, addGenerationPrompt bool, toolsJSON, kwargsJSON string) ([]uint32, error) {
	mp, ml := str(messagesJSON)
	tp, tl := optStr(nonEmpty(toolsJSON))
	kp, kl := optStr(nonEmpty(kwargsJSON))
	var ids []uint32
	err := s.with(func(h *C.llmd_chat_session) error {
		var out *C.llmd_tokens
		var e *C.llmd_error
		st := C.llmd_chat_session_encode_chat(h, mp, ml, C.bool(addGenerationPrompt), tp, tl, kp, kl, &out, &e)
		if err := takeError(st, e); err != nil {
			return err
		}
		ids = takeTokens(out)
		return nil
	})
	return ids, err
}

// LastReusedTokens is how many ids the last EncodeChat took from the cache.
func (s *ChatSession) LastReusedTokens() int {
	n := 0
	_ = s.with(func(h *C.llmd_chat_session) error {
		n = int(C.llmd_chat_session_reused_tokens(h))
		return nil
	})
	return n
}

// Reset forgets the cached prefix: the next call tokenizes the whole
// conversation.
func (s *ChatSession) Reset() {
	_ = s.with(func(h *C.llmd_chat_session) error {
		C.llmd_chat_session_reset(h)
		return nil
	})
}

// Close releases the session; later calls return ErrClosed.
func (s *ChatSession) Close() error {
	s.close(func(h *C.llmd_chat_session) { C.llmd_chat_session_free(h) })
	return disowned(s)
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Close releases the tokenizer (a scheduler it was given to keeps its own
// reference); later calls return ErrClosed.
func (t *Tokenizer) Close() error {
	t.close(func(h *C.llmd_tokenizer) { C.llmd_tokenizer_free(h) })
	return disowned(t)
}

// SetTokenizer makes PickOpenAI tokenize requests to model ("" for every
// model without its own) with tok.
func (s *Scheduler) SetTokenizer(model string, tok *Tokenizer) error {
	return s.with(func(h *C.llmd_scheduler) error {
		return tok.with(func(th *C.llmd_tokenizer) error {
			mp, ml := str(model)
			var e *C.llmd_error
			return takeError(C.llmd_scheduler_set_tokenizer(h, mp, ml, th, &e), e)
		})
	})
}

// PickOpenAI picks for an OpenAI request body as the gateway received it:
// path is /v1/completions or /v1/chat/completions, id names the request for
// the lifecycle calls. With a tokenizer for the model (SetTokenizer) the
// prompt's ids are the engine's; without one they are estimated and the
// explanation says so. A malformed body matches ErrInvalidArgument, naming
// the field.
func (s *Scheduler) PickOpenAI(id, path string, body []byte, headers map[string]string, explain bool) (*Decision, error) {
	// As Pick: locked inline and the out-slots in arena (C) memory, so no Go
	// memory escapes to the heap or is scanned by cgo's pointer checks.
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.h == nil {
		return nil, ErrClosed
	}
	a := getArena()
	defer a.put()
	c := (*pickCall)(a.alloc(int(unsafe.Sizeof(pickCall{})), 8))
	*c = pickCall{}
	ids, paths := a.str(id), a.str(path)
	hp, hn := a.pairs(headers)
	exp := s.exporter.Load()
	var start time.Time
	if exp != nil {
		start = time.Now()
	}
	// The body goes straight from the Go slice (pointer-free, read by C
	// during the call only).
	st := C.llmd_scheduler_pick_openai(s.h, ids.ptr, ids.len, paths.ptr, paths.len,
		(*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(body))), C.size_t(len(body)), hp, hn, &c.dec, &c.err)
	if err := takeError(st, c.err); err != nil {
		return nil, err
	}
	defer C.llmd_decision_free(c.dec)
	if exp != nil {
		exp.export(c.dec, start, time.Now())
	}
	return readDecision(c.dec, &c.info, explain)
}
