package llmd

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const tinyTokenizer = "../../testdata/tokenizers/tiny"

func TestTokenizerAndPickOpenAI(t *testing.T) {
	tok, err := TokenizerFromDir(tinyTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Encode("w1 w2 zz", true)
	if err != nil || !reflect.DeepEqual(ids, []uint32{0, 8, 9, 1}) {
		t.Fatalf("encode: %v %v", ids, err)
	}
	chat, err := tok.EncodeChat(`[{"role": "user", "content": "w1 w2"}]`, true, "", "")
	if err != nil || !reflect.DeepEqual(chat, []uint32{2, 4, 8, 9, 3, 2, 5}) {
		t.Fatalf("chat: %v %v", chat, err)
	}
	text, err := tok.RenderChat(`[{"role": "user", "content": "w1 w2"}]`, true, "", "")
	if again, _ := tok.Encode(text, false); err != nil || !reflect.DeepEqual(again, chat) {
		t.Fatalf("render: %q %v", text, err)
	}
	// Rendering as the engine was started: its template and default kwargs.
	eng, err := TokenizerFromDirEngine(tinyTokenizer, EngineChat{
		ChatTemplate:  "{% for m in messages %}{{ m.content }}|{% endfor %}{{ flag }}",
		DefaultKwargs: map[string]any{"flag": "w3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if r, err := eng.RenderChat(`[{"role": "user", "content": "w1 w2"}]`, true, "", ""); err != nil || r != "w1 w2|w3" {
		t.Fatalf("engine render: %q %v", r, err)
	}
	if _, err := TokenizerFromDirEngine(tinyTokenizer, EngineChat{DefaultKwargs: map[string]any{"messages": nil}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("reserved kwarg: %v", err)
	}
	body := []byte(`{"model": "m", "messages": [{"role": "user", "content": "w1 w2"}]}`)
	if ids, err := tok.EncodeOpenAI("/v1/chat/completions", body); err != nil || !reflect.DeepEqual(ids, chat) {
		t.Fatalf("chat body: %v %v", ids, err)
	}
	plain, _ := tok.Encode("w1 w2 zz", false)
	if ids, err := tok.EncodeOpenAI("/v1/completions", []byte(`{"prompt": "w1 w2 zz", "add_special_tokens": false}`)); err != nil || len(plain) == 0 || !reflect.DeepEqual(ids, plain) {
		t.Fatalf("completions body: %v %v", ids, err)
	}
	var le *Error
	if _, err := tok.EncodeOpenAI("/v1/chat/completions", []byte(`{"messages": {}}`)); !errors.As(err, &le) || le.Code != "request" || !strings.Contains(err.Error(), "'messages'") {
		t.Fatalf("bad body: %v", err)
	}
	sess, err := tok.Session()
	if err != nil {
		t.Fatal(err)
	}
	turns := []string{
		`[{"role": "user", "content": "w1 w2"}]`,
		`[{"role": "user", "content": "w1 w2"}, {"role": "assistant", "content": "w2"}, {"role": "user", "content": "w1"}]`,
	}
	for i, turn := range turns {
		full, err1 := tok.EncodeChat(turn, true, "", "")
		inc, err2 := sess.EncodeChat(turn, true, "", "")
		if err1 != nil || err2 != nil || !reflect.DeepEqual(full, inc) || (i > 0 && sess.LastReusedTokens() == 0) {
			t.Fatalf("turn %d: %v %v %v %v", i, full, inc, err1, err2)
		}
	}
	// After Reset nothing comes from the cache; the ids stay the same.
	sess.Reset()
	again, err := sess.EncodeChat(turns[1], true, "", "")
	if err != nil || sess.LastReusedTokens() != 0 {
		t.Fatalf("after reset: reused %d, %v", sess.LastReusedTokens(), err)
	}
	if full, _ := tok.EncodeChat(turns[1], true, "", ""); !reflect.DeepEqual(full, again) {
		t.Fatalf("after reset: %v, want %v", again, full)
	}
	if _, err := TokenizerFromDir("/nonexistent"); !errors.As(err, &le) || le.Code != "tokenizer_file" || !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("missing dir: %v", err)
	}
	s, err := NewScheduler(feedConfig, WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddEndpoint(Endpoint{Name: "a", Address: "10.0.0.1:8000"}); err != nil {
		t.Fatal(err)
	}
	d, err := s.PickOpenAI("r1", "/v1/chat/completions", body, nil, true)
	if err != nil || !strings.Contains(string(d.Explanation), "estimated from text") {
		t.Fatalf("without a tokenizer: %v %s", err, d.Explanation)
	}
	s.OnError("r1", Cancelled)
	if err := s.SetTokenizer("m", tok); err != nil {
		t.Fatal(err)
	}
	tok.Close() // the scheduler and the session keep their own references
	if ids, err := sess.EncodeChat(turns[0], true, "", ""); err != nil || !reflect.DeepEqual(ids, chat) {
		t.Fatalf("session after the tokenizer's close: %v %v", ids, err)
	}
	sess.Close()
	if _, err := sess.EncodeChat(turns[0], true, "", ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed session: %v", err)
	}
	d, err = s.PickOpenAI("r2", "/v1/chat/completions", body, map[string]string{"x-session-id": "s1"}, true)
	if err != nil || strings.Contains(string(d.Explanation), "estimated from text") || !strings.Contains(string(d.Explanation), `"prompt_tokens":7`) {
		t.Fatalf("with a tokenizer: %v %s", err, d.Explanation)
	}
	if d.Targets[0].Name != "a" {
		t.Fatalf("target %+v", d.Targets)
	}
	s.OnError("r2", Cancelled)
	if _, err := s.PickOpenAI("r3", "/v1/chat/completions", []byte(`{"messages": 3}`), nil, false); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "'messages'") {
		t.Fatalf("bad body: %v", err)
	}
	if _, err := tok.Encode("x", true); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}
