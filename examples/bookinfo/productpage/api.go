package productpage

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
)

// product is an entry of GET /api/v1/products.
type product struct {
	ID              int    `json:"id"`
	Title           string `json:"title"`
	DescriptionHTML string `json:"descriptionHtml"`
}

// theBook is the one product of the store.
var theBook = product{
	ID:    0,
	Title: "The Comedy of Errors",
	DescriptionHTML: `<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: ` +
		`The Comedy of Errors, an early play by <b>William Shakespeare</b> and his shortest, follows two pairs ` +
		`of identical twins, parted as infants, through one bewildering day in Ephesus: farce, mistaken ` +
		`identities and a great deal of wordplay.`,
}

// The JSON of GET /api/v1/products/{id}/reviews, fields in the order of
// the original.
type reviewsJSON struct {
	ID          string       `json:"id"`
	Podname     string       `json:"podname"`
	Clustername string       `json:"clustername"`
	Reviews     []reviewJSON `json:"reviews"`
}

type reviewJSON struct {
	Reviewer string      `json:"reviewer"`
	Text     string      `json:"text"`
	Rating   *ratingJSON `json:"rating,omitempty"`
}

type ratingJSON struct {
	Stars *int32 `json:"stars,omitempty"`
	Color string `json:"color,omitempty"`
	Error string `json:"error,omitempty"`
}

func toReviewsJSON(p *bookinfopb.ProductReviews) reviewsJSON {
	out := reviewsJSON{
		ID:          p.GetId(),
		Podname:     p.GetPodname(),
		Clustername: p.GetClustername(),
		Reviews:     make([]reviewJSON, 0, len(p.GetReviews())),
	}
	if out.Clustername == "" {
		out.Clustername = "null"
	}
	for _, r := range p.GetReviews() {
		rj := reviewJSON{Reviewer: r.GetReviewer(), Text: r.GetText()}
		if rt := r.GetRating(); rt != nil {
			if rt.GetError() != "" {
				rj.Rating = &ratingJSON{Error: rt.GetError()}
			} else {
				stars := rt.GetStars()
				rj.Rating = &ratingJSON{Stars: &stars, Color: rt.GetColor()}
			}
		}
		out.Reviews = append(out.Reviews, rj)
	}
	return out
}

// The JSON of GET /api/v1/products/{id}/ratings.
type ratingsJSON struct {
	ID      int64            `json:"id"`
	Ratings map[string]int32 `json:"ratings"`
}

func toRatingsJSON(p *bookinfopb.ProductRatings) ratingsJSON {
	r := p.GetRatings()
	if r == nil {
		r = map[string]int32{}
	}
	return ratingsJSON{ID: p.GetId(), Ratings: r}
}

type errorJSON struct {
	Error string `json:"error"`
}

func productsAPI(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []product{theBook})
}

func (s *server) detailsAPI(w http.ResponseWriter, r *http.Request) {
	code, body := s.details(r.Context(), chi.URLParam(r, "id"), forwardHeaders(r))
	if code != http.StatusOK {
		writeJSON(w, code, errorJSON{MsgDetailsUnavailable})
		return
	}
	// Passed through as details wrote it, keys in its order.
	var compact bytes.Buffer
	_ = json.Compact(&compact, body) // body is valid JSON
	writeBody(w, code, spaced(compact.Bytes()))
}

func (s *server) reviewsAPI(w http.ResponseWriter, r *http.Request) {
	code, resp := s.reviews(r.Context(), chi.URLParam(r, "id"), forwardHeaders(r))
	if code != http.StatusOK {
		writeJSON(w, code, errorJSON{MsgReviewsUnavailable})
		return
	}
	writeJSON(w, code, toReviewsJSON(resp))
}

func (s *server) ratingsAPI(w http.ResponseWriter, r *http.Request) {
	code, resp := s.ratings(r.Context(), chi.URLParam(r, "id"), forwardHeaders(r))
	if code != http.StatusOK {
		writeJSON(w, code, errorJSON{MsgRatingsUnavailable})
		return
	}
	writeJSON(w, code, toRatingsJSON(resp))
}

// writeJSON writes v as JSON in the layout of the original productpage: a
// space after every colon and comma, and <, > and & left as they are.
func writeJSON(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, code, spaced(bytes.TrimSuffix(b.Bytes(), []byte("\n"))))
}

func writeBody(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// spaced returns compact JSON with a space after each colon and comma
// that separates keys, values and elements.
func spaced(compact []byte) []byte {
	out := make([]byte, 0, len(compact)+len(compact)/8)
	inString, escaped := false, false
	for _, c := range compact {
		out = append(out, c)
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == ':' || c == ',':
			out = append(out, ' ')
		}
	}
	return out
}
