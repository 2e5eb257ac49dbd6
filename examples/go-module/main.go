// Command gateway shows the llmd Go package used from a module of its own
// (see go.mod's replace directive): it loads llm-d's default pipeline, adds
// two endpoints and prints where a request goes and what to forward.
package main

import (
	"fmt"
	"log"

	"llmd.dev/llmd"
)

func route() (string, error) {
	s, err := llmd.NewScheduler("")
	if err != nil {
		return "", err
	}
	defer s.Close()
	for _, ep := range []llmd.Endpoint{
		{Name: "pod-a", Address: "10.0.0.1:8000", Model: "llama"},
		{Name: "pod-b", Address: "10.0.0.2:8000", Model: "llama"},
	} {
		if err := s.AddEndpoint(ep); err != nil {
			return "", err
		}
	}
	if err := s.UpdateMetrics("pod-a", llmd.Metrics{WaitingQueueSize: 9, KVCacheUsage: 0.9}); err != nil {
		return "", err
	}
	d, err := s.Pick(&llmd.Request{ID: "r1", Model: "llama", Prompt: "hello"})
	if err != nil {
		return "", err
	}
	if _, _, err := s.OnComplete("r1", -1); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s via %s", d.Targets[0].Name, d.Header("x-gateway-destination-endpoint")), nil
}

func main() {
	out, err := route()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
}
