package main

import "testing"

func TestRouteFromAnotherModule(t *testing.T) {
	got, err := route()
	if err != nil {
		t.Fatal(err)
	}
	if got != "pod-b via 10.0.0.2:8000" {
		t.Fatalf("route() = %q", got)
	}
}
