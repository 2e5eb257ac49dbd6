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
	var le *Error
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
	body := []byte(`{"model": "m", "messages": [{"role": "user", "content": "w1 w2"}]}`)
	d, err := s.PickOpenAI("r1", "/v1/chat/completions", body, nil, true)
	if err != nil || !strings.Contains(string(d.Explanation), "estimated from text") {
		t.Fatalf("without a tokenizer: %v %s", err, d.Explanation)
	}
	s.OnError("r1", Cancelled)
	if err := s.SetTokenizer("m", tok); err != nil {
		t.Fatal(err)
	}
	tok.Close() // the scheduler keeps its own reference
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
