package main

import (
	"context"
	"net/http"
)

func contextWith(r *http.Request, f *inflight) context.Context {
	return context.WithValue(r.Context(), ctxKey{}, f)
}
