package productpage_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/faults"
	"github.com/graylane/graylane/examples/bookinfo/productpage"
	"github.com/graylane/graylane/examples/bookinfo/ratings"
	"github.com/graylane/graylane/examples/bookinfo/reviews"
)

const (
	text1 = "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"
	text2 = "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."
)

func errBody(sentence string) map[string]any { return map[string]any{"error": sentence} }

var (
	detailsErr = errBody("Sorry, product details are currently unavailable for this book.")
	reviewsErr = errBody("Sorry, product reviews are currently unavailable for this book.")
	ratingsErr = errBody("Sorry, product ratings are currently unavailable for this book.")
)

func bookJSON(id float64) map[string]any {
	return map[string]any{
		"id": id, "author": "William Shakespeare", "year": float64(1595), "type": "paperback",
		"pages": float64(200), "publisher": "PublisherA", "language": "English",
		"ISBN-10": "1234567890", "ISBN-13": "123-1234567890",
	}
}

// reviewsJSON is the reviews JSON of a reviews instance, with the ratings
// of the two reviews (nil: no rating key).
func reviewsJSON(id, podname string, r1, r2 map[string]any) map[string]any {
	review := func(reviewer, text string, rating map[string]any) map[string]any {
		m := map[string]any{"reviewer": reviewer, "text": text}
		if rating != nil {
			m["rating"] = rating
		}
		return m
	}
	return map[string]any{
		"id": id, "podname": podname, "clustername": "null",
		"reviews": []any{review("Reviewer1", text1, r1), review("Reviewer2", text2, r2)},
	}
}

func stars(n float64, color string) map[string]any {
	return map[string]any{"stars": n, "color": color}
}

var ratingUnavailable = map[string]any{"error": "Ratings service is currently unavailable"}

// keys returns the keys of the JSON object b in their order.
func keys(t *testing.T, b string) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(b)))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var ks []string
	for dec.More() {
		tok, err := dec.Token()
		require.NoError(t, err)
		ks = append(ks, tok.(string))
		var v json.RawMessage
		require.NoError(t, dec.Decode(&v))
	}
	return ks
}

func TestProductsAPI(t *testing.T) {
	e := newEnv(t, setup{})
	r := e.get(t, "/api/v1/products")
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	list, ok := decode(t, r.body).([]any)
	require.True(t, ok)
	require.Len(t, list, 1)
	p := list[0].(map[string]any)
	assert.Len(t, p, 3)
	assert.Equal(t, float64(0), p["id"])
	assert.Equal(t, "The Comedy of Errors", p["title"])
	desc, _ := p["descriptionHtml"].(string)
	assert.Contains(t, desc, `<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">`)
	assert.Contains(t, desc, "William Shakespeare")
	assert.Contains(t, r.body, `<a href=`, "HTML is not escaped")
}

func TestDetailsAPI(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		fault  faults.Fault
		status int
		want   map[string]any
	}{
		{"product 0", "/api/v1/products/0", faults.Fault{}, 200, bookJSON(0)},
		{"id echoed", "/api/v1/products/5", faults.Fault{}, 200, bookJSON(5)},
		{"non-numeric", "/api/v1/products/abc", faults.Fault{}, 400, detailsErr},
		{"details fails 503", "/api/v1/products/0", faults.Fault{Abort: 503}, 503, detailsErr},
		{"details fails 404", "/api/v1/products/0", faults.Fault{Abort: 404}, 404, detailsErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, setup{})
			require.NoError(t, e.detailsFaults.Set(tt.fault))
			r := e.get(t, tt.path)
			assert.Equal(t, tt.status, r.status)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			assert.Equal(t, tt.want, decode(t, r.body))
			if tt.status == http.StatusOK {
				assert.Equal(t, []string{"id", "author", "year", "type", "pages", "publisher", "language", "ISBN-10", "ISBN-13"}, keys(t, r.body), "the keys keep the order of details")
			}
		})
	}
}

func TestDetailsAPIExactLayout(t *testing.T) {
	e := newEnv(t, setup{})
	assert.Equal(t, `{"id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200, "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"}`,
		e.get(t, "/api/v1/products/0").body)
	assert.Equal(t, `{"error": "Sorry, product details are currently unavailable for this book."}`,
		e.get(t, "/api/v1/products/x").body)
}

func TestDetailsAPIUnreachableOrSlow(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	e := newEnv(t, setup{detailsURL: gone.URL})
	r := e.get(t, "/api/v1/products/0")
	assert.Equal(t, http.StatusInternalServerError, r.status)
	assert.Equal(t, detailsErr, decode(t, r.body))

	e = newEnv(t, setup{opts: []productpage.Option{productpage.WithDetailsTimeout(timeoutT)}})
	require.NoError(t, e.detailsFaults.Set(faults.Fault{Delay: 4 * timeoutT}))
	r = e.get(t, "/api/v1/products/0")
	assert.Equal(t, http.StatusInternalServerError, r.status)
	assert.Equal(t, detailsErr, decode(t, r.body))
}

func TestReviewsAPI(t *testing.T) {
	tests := []struct {
		name    string
		reviews reviews.Version
		ratings ratings.Version
		path    string
		fault   faults.Fault // on reviews
		rfault  faults.Fault // on ratings
		status  int
		want    map[string]any
	}{
		{"v1", reviews.V1, ratings.V1, "/api/v1/products/0/reviews", faults.Fault{}, faults.Fault{}, 200,
			reviewsJSON("0", "reviews-v1-0", nil, nil)},
		{"v2", reviews.V2, ratings.V1, "/api/v1/products/0/reviews", faults.Fault{}, faults.Fault{}, 200,
			reviewsJSON("0", "reviews-v2-0", stars(5, "black"), stars(4, "black"))},
		{"v2 with ratings v2", reviews.V2, ratings.V2, "/api/v1/products/0/reviews", faults.Fault{}, faults.Fault{}, 200,
			reviewsJSON("0", "reviews-v2-0", stars(3, "black"), stars(2, "black"))},
		{"v3", reviews.V3, ratings.V1, "/api/v1/products/0/reviews", faults.Fault{}, faults.Fault{}, 200,
			reviewsJSON("0", "reviews-v3-0", stars(5, "red"), stars(4, "red"))},
		{"id as string", reviews.V1, ratings.V1, "/api/v1/products/12/reviews", faults.Fault{}, faults.Fault{}, 200,
			reviewsJSON("12", "reviews-v1-0", nil, nil)},
		{"ratings down", reviews.V3, ratings.V1, "/api/v1/products/0/reviews", faults.Fault{}, faults.Fault{Abort: 503}, 200,
			reviewsJSON("0", "reviews-v3-0", ratingUnavailable, ratingUnavailable)},
		{"non-numeric", reviews.V1, ratings.V1, "/api/v1/products/abc/reviews", faults.Fault{}, faults.Fault{}, 400, reviewsErr},
		{"reviews unavailable", reviews.V1, ratings.V1, "/api/v1/products/0/reviews", faults.Fault{Abort: 503}, faults.Fault{}, 500, reviewsErr},
		{"reviews not found", reviews.V1, ratings.V1, "/api/v1/products/0/reviews", faults.Fault{Abort: 404}, faults.Fault{}, 404, reviewsErr},
		{"reviews unimplemented", reviews.V1, ratings.V1, "/api/v1/products/0/reviews", faults.Fault{Abort: 501}, faults.Fault{}, 501, reviewsErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, setup{reviews: tt.reviews, ratings: tt.ratings})
			require.NoError(t, e.reviewsFaults.Set(tt.fault))
			require.NoError(t, e.ratingsFaults.Set(tt.rfault))
			r := e.get(t, tt.path)
			assert.Equal(t, tt.status, r.status)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			assert.Equal(t, tt.want, decode(t, r.body))
			if tt.status == http.StatusOK {
				assert.Equal(t, []string{"id", "podname", "clustername", "reviews"}, keys(t, r.body))
			}
		})
	}
}

func TestReviewsAPIExactLayout(t *testing.T) {
	e := newEnv(t, setup{reviews: reviews.V1})
	assert.Equal(t, `{"id": "0", "podname": "reviews-v1-0", "clustername": "null", "reviews": [{"reviewer": "Reviewer1", "text": "`+text1+`"}, {"reviewer": "Reviewer2", "text": "`+text2+`"}]}`,
		e.get(t, "/api/v1/products/0/reviews").body)
}

func TestRatingsAPI(t *testing.T) {
	tests := []struct {
		name    string
		ratings ratings.Version
		path    string
		fault   faults.Fault
		status  int
		want    map[string]any
	}{
		{"v1", ratings.V1, "/api/v1/products/0/ratings", faults.Fault{}, 200,
			map[string]any{"id": float64(0), "ratings": map[string]any{"Reviewer1": float64(5), "Reviewer2": float64(4)}}},
		{"v2", ratings.V2, "/api/v1/products/0/ratings", faults.Fault{}, 200,
			map[string]any{"id": float64(0), "ratings": map[string]any{"Reviewer1": float64(3), "Reviewer2": float64(2)}}},
		{"id as number", ratings.V1, "/api/v1/products/7/ratings", faults.Fault{}, 200,
			map[string]any{"id": float64(7), "ratings": map[string]any{"Reviewer1": float64(5), "Reviewer2": float64(4)}}},
		{"non-numeric", ratings.V1, "/api/v1/products/abc/ratings", faults.Fault{}, 400, ratingsErr},
		{"unavailable", ratings.V1, "/api/v1/products/0/ratings", faults.Fault{Abort: 503}, 500, ratingsErr},
		{"not found", ratings.V1, "/api/v1/products/0/ratings", faults.Fault{Abort: 404}, 404, ratingsErr},
		{"unimplemented", ratings.V1, "/api/v1/products/0/ratings", faults.Fault{Abort: 501}, 501, ratingsErr},
		{"internal", ratings.V1, "/api/v1/products/0/ratings", faults.Fault{Abort: 500}, 500, ratingsErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, setup{ratings: tt.ratings})
			require.NoError(t, e.ratingsFaults.Set(tt.fault))
			r := e.get(t, tt.path)
			assert.Equal(t, tt.status, r.status)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			assert.Equal(t, tt.want, decode(t, r.body))
		})
	}
}

func TestRatingsAPITimeout(t *testing.T) {
	e := newEnv(t, setup{opts: []productpage.Option{productpage.WithRatingsTimeout(timeoutT)}})
	require.NoError(t, e.ratingsFaults.Set(faults.Fault{Delay: 4 * timeoutT}))
	r := e.get(t, "/api/v1/products/0/ratings")
	assert.Equal(t, http.StatusInternalServerError, r.status)
	assert.Equal(t, ratingsErr, decode(t, r.body))
}

func TestRatingsAPIShowsRatedValues(t *testing.T) {
	e := newEnv(t, setup{})
	_, err := e.ratingsClient.Rate(t.Context(), &bookinfopb.RateRequest{ProductId: "0", Ratings: map[string]int32{"Reviewer9": 1}})
	require.NoError(t, err)
	assert.Equal(t, `{"id": 0, "ratings": {"Reviewer9": 1}}`, e.get(t, "/api/v1/products/0/ratings").body)
}
