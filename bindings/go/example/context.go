package main

import (
	"context"
	"net/http"

	"llmd.dev/llmd"
)

func contextWith(r *http.Request, d *llmd.Decision) context.Context {
	return context.WithValue(r.Context(), ctxKey{}, d)
}
