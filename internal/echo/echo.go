// Package echo is a tiny HTTP backend that answers with what it received, as
// JSON. `meshgate demo` runs one per virtual node, and end-to-end tests use it
// to see exactly what the gateway forwarded.
package echo

import (
	"encoding/json"
	"io"
	"net/http"
)

// Reply is the JSON an echo backend answers with.
type Reply struct {
	Backend string      `json:"backend"`
	Method  string      `json:"method"`
	Host    string      `json:"host"`
	Path    string      `json:"path"`
	Query   string      `json:"query,omitempty"`
	Header  http.Header `json:"header"`
	Body    string      `json:"body,omitempty"`
}

// Handler answers every request with a Reply naming backend.
func Handler(backend string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", backend)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(Reply{
			Backend: backend,
			Method:  r.Method,
			Host:    r.Host,
			Path:    r.URL.Path,
			Query:   r.URL.RawQuery,
			Header:  r.Header,
			Body:    string(body),
		})
	})
}
