package faults

import (
	"net/http"
)

// Middleware returns HTTP middleware that applies s to every request: it
// waits the delay, then either fails the request with the abort status
// and the body {"error":"fault injected"}, or passes it on. A request
// whose client goes away during the delay gets no answer. A nil s passes
// every request on untouched.
func Middleware(s *Switch) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if s == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			abort, err := s.Apply(r.Context())
			if err != nil {
				return
			}
			if abort != 0 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(abort)
				_, _ = w.Write([]byte(`{"error":"fault injected"}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
