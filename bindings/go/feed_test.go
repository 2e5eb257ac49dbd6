package llmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const feedConfig = `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: precise-prefix-cache-producer
  parameters:
    kvEventsConfig: {concurrency: 2, discoverPods: false}
- type: prefix-cache-scorer
  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
  - pluginRef: max-score-picker
`

// podAndScheduler starts a pod serving metrics and a scheduler of
// feedConfig, both closed when the test ends.
func podAndScheduler(t *testing.T, metrics string) (*httptest.Server, *Scheduler) {
	t.Helper()
	pod := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, metrics)
	}))
	t.Cleanup(pod.Close)
	s, err := NewScheduler(feedConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return pod, s
}

// waitPod waits up to 10 s for the pod's stats to satisfy ok.
func waitPod(t *testing.T, f *Feed, name string, ok func(PodStats) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stats, err := f.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if ok(stats[name]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %+v", name, stats[name])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFeedScrapesAPodAndReports(t *testing.T) {
	pod, s := podAndScheduler(t, "vllm:num_requests_waiting{model_name=\"m\"} 7\nvllm:num_requests_running{model_name=\"m\"} 2\n")
	f, err := NewFeed(s)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings, err := f.Settings()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, st := range settings {
		if st.Setting == "kvEventsConfig.concurrency" && st.Executed {
			found = true
		}
	}
	if !found {
		t.Fatalf("no executed concurrency setting in %+v", settings)
	}
	addr := strings.TrimPrefix(pod.URL, "http://")
	if err := f.AddPod(Pod{Name: "pod-a", Address: addr}); err != nil {
		t.Fatal(err)
	}
	if err := f.AddPod(Pod{Name: "pod-a", Address: addr}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("duplicate pod: %v", err)
	}
	if err := f.AddPod(Pod{Name: "pod-b", Address: "127.0.0.1:1", Events: "ipc:///x"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ipc endpoint: %v", err)
	}
	if s.EndpointCount() != 1 {
		t.Fatalf("endpoints: %d", s.EndpointCount())
	}
	if names, err := s.Endpoints(); err != nil || len(names) != 1 || names[0] != "pod-a" {
		t.Fatalf("endpoint names: %v %v", names, err)
	}
	if pods, err := f.Pods(); err != nil || len(pods) != 1 || pods[0] != "pod-a" {
		t.Fatalf("pods: %v %v", pods, err)
	}
	if f.Running() || f.UnknownPublisherMessages() != 0 {
		t.Fatal("running before Start")
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	if !f.Running() {
		t.Fatal("not running after Start")
	}
	waitPod(t, f, "pod-a", func(st PodStats) bool { return st.Scrapes > 0 && st.Up && st.Registered })
	// Every counter the library reports has its PodStats field.
	raw, err := f.statsJSON()
	if err != nil {
		t.Fatal(err)
	}
	var byKey map[string]map[string]any
	if err := json.Unmarshal([]byte(raw), &byKey); err != nil {
		t.Fatal(err)
	}
	fields := map[string]bool{}
	ty := reflect.TypeOf(PodStats{})
	for i := 0; i < ty.NumField(); i++ {
		fields[strings.Split(ty.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	for key := range byKey["pod-a"] {
		if !fields[key] {
			t.Errorf("PodStats lacks the library's %q", key)
		}
	}
	text, err := f.RenderMetrics()
	if err != nil || !strings.Contains(text, `llmd_feed_pod_up{pod="pod-a"} 1`) {
		t.Fatalf("metrics: %v\n%s", err, text)
	}
	ep, err := f.BindEvents("tcp://127.0.0.1:0")
	if err != nil || !strings.HasPrefix(ep, "tcp://127.0.0.1:") {
		t.Fatalf("bind: %q %v", ep, err)
	}
	if bound, err := f.BoundEndpoints(); err != nil || len(bound) != 1 || bound[0] != ep {
		t.Fatalf("bound endpoints: %q %v, want [%q]", bound, err, ep)
	}
	var le *Error
	if err := f.RemovePod("nope"); !errors.As(err, &le) || le.Code != "unknown_pod" || !errors.Is(err, ErrUnknownEndpoint) {
		t.Fatalf("unknown pod: %v", err)
	}
	if err := f.RemovePod("pod-a"); err != nil || s.EndpointCount() != 0 {
		t.Fatalf("remove: %v, %d endpoints", err, s.EndpointCount())
	}
	f.Stop()
	if f.Running() {
		t.Fatal("running after Stop")
	}
	if err := f.Start(); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("restart after stop: %v", err)
	}
	f.Close()
	if err := f.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestFeedDiscoverySources(t *testing.T) {
	s, err := NewScheduler(feedConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := NewFeed(s)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.SyncPods([]Pod{{Name: "a", Address: "127.0.0.1:1", NoScrape: true}, {Name: "b", Address: "127.0.0.1:2", NoScrape: true}}); err != nil {
		t.Fatal(err)
	}
	if err := f.SyncPods([]Pod{{Name: "b", Address: "127.0.0.1:2", NoScrape: true}}); err != nil || s.EndpointCount() != 1 {
		t.Fatalf("sync: %v, %d endpoints", err, s.EndpointCount())
	}
	path := filepath.Join(t.TempDir(), "endpoints.yaml")
	if err := os.WriteFile(path, []byte("endpoints:\n- {name: c, address: 127.0.0.3, port: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.WatchFile(path, true); err != nil {
		t.Fatal(err)
	}
	if err := f.DiscoverDNS("", 1, time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty host: %v", err)
	}
	// No lookup loop: an interval under a millisecond is refused.
	for _, d := range []time.Duration{0, time.Microsecond} {
		if err := f.DiscoverDNS("localhost", 1, d); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "interval") {
			t.Fatalf("interval %v: %v", d, err)
		}
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.EndpointCount() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("file pod never added: %d endpoints", s.EndpointCount())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Options set over the configuration are executed and reported as the
// host's; bad ones are refused by name.
func TestFeedOptionsAreExecutedAndReported(t *testing.T) {
	pod, s := podAndScheduler(t, "vllm:num_requests_waiting{model_name=\"m\"} 0\n")
	for _, bad := range []struct {
		opt  FeedOption
		name string
	}{
		{FeedConcurrency(0), "concurrency"},
		{FeedScrapeInterval(-time.Second), "scrape_interval"},
		{FeedReplayTimeout(0), "replay_timeout"},
		{FeedHeartbeatInterval(-time.Second), "heartbeat_interval"},
	} {
		if _, err := NewFeed(s, bad.opt); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), bad.name) {
			t.Fatalf("%s: %v", bad.name, err)
		}
	}
	// A scrape an hour: after the first, no second one comes.
	f, err := NewFeed(s, FeedScrapeInterval(time.Hour), FeedConcurrency(1), FeedHeartbeatInterval(0), FeedTopics("kv@"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings, err := f.Settings()
	if err != nil {
		t.Fatal(err)
	}
	host := map[string]bool{}
	for _, st := range settings {
		if st.Plugin == "host" && st.Executed {
			host[st.Setting] = true
		}
	}
	for _, name := range []string{"scrape_interval", "concurrency", "heartbeat_interval", "topics"} {
		if !host[name] {
			t.Fatalf("%s not reported as the host's: %+v", name, settings)
		}
	}
	if err := f.AddPod(Pod{Name: "pod-a", Address: strings.TrimPrefix(pod.URL, "http://")}); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	waitPod(t, f, "pod-a", func(st PodStats) bool { return st.Scrapes > 0 })
	time.Sleep(300 * time.Millisecond) // six scrapes at the 50 ms default
	stats, err := f.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if n := stats["pod-a"].Scrapes; n != 1 {
		t.Fatalf("%d scrapes with an hour between them", n)
	}
}
