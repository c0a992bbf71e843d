package details

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/graylane/graylane/examples/bookinfo/faults"
)

// Option configures the service.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	faults *faults.Switch
}

// WithFaults sets the fault switch applied to GET /details/{id}. The
// default is none: no faults.
func WithFaults(s *faults.Switch) Option {
	return optionFunc(func(c *config) { c.faults = s })
}

// book is the answer to GET /details/{id}, its fields in the order of the
// original JSON.
type book struct {
	ID        int64  `json:"id"`
	Author    string `json:"author"`
	Year      int    `json:"year"`
	Type      string `json:"type"`
	Pages     int    `json:"pages"`
	Publisher string `json:"publisher"`
	Language  string `json:"language"`
	ISBN10    string `json:"ISBN-10"`
	ISBN13    string `json:"ISBN-13"`
}

// New returns the details service.
func New(opts ...Option) http.Handler {
	var c config
	for _, o := range opts {
		o.apply(&c)
	}
	r := chi.NewRouter()
	r.Get("/health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "Details is healthy"})
	})
	r.With(faults.Middleware(c.faults)).Get("/details/{id}", getDetails)
	return r
}

func getDetails(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "please provide numeric product id"})
		return
	}
	writeJSON(w, http.StatusOK, book{
		ID:        id,
		Author:    "William Shakespeare",
		Year:      1595,
		Type:      "paperback",
		Pages:     200,
		Publisher: "PublisherA",
		Language:  "English",
		ISBN10:    "1234567890",
		ISBN13:    "123-1234567890",
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
