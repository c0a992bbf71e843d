package productpage

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/examples/bookinfo/bookinfopb"
	"github.com/graylane/graylane/examples/bookinfo/internal/forward"
)

// The sentences productpage answers with when an upstream fails.
const (
	MsgDetailsUnavailable = "Sorry, product details are currently unavailable for this book."
	MsgReviewsUnavailable = "Sorry, product reviews are currently unavailable for this book."
	MsgRatingsUnavailable = "Sorry, product ratings are currently unavailable for this book."
)

// maxDetailsBody bounds what productpage reads of a details answer.
const maxDetailsBody = 1 << 20

// forwardHeaders returns the headers to send downstream for r: the ones
// the Bookinfo services forward, and the end-user of the session. An
// inbound end-user is not among them.
func forwardHeaders(r *http.Request) []string {
	pairs := forward.FromHTTP(r.Header)
	if u := userOf(r); u != "" {
		pairs = append(pairs, forward.EndUser, u)
	}
	return pairs
}

// details asks details for a product, once, within the details timeout.
// It returns 200 and the answer as compact JSON, or the status details
// answered with, or 500 when the call failed, timed out or answered
// something that is not JSON.
func (s *server) details(ctx context.Context, id string, fwd []string) (int, []byte) {
	code, body := s.fetchDetails(ctx, id, fwd)
	s.metrics.inc(ctx, "details", code)
	return code, body
}

func (s *server) fetchDetails(ctx context.Context, id string, fwd []string) (int, []byte) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.detailsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.detailsURL+"/details/"+url.PathEscape(id), nil)
	if err != nil {
		return http.StatusInternalServerError, nil
	}
	forward.ToHTTP(req.Header, fwd)
	resp, err := s.client.Do(req)
	if err != nil {
		return http.StatusInternalServerError, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDetailsBody))
		return resp.StatusCode, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDetailsBody))
	if err != nil || !json.Valid(body) {
		return http.StatusInternalServerError, nil
	}
	return http.StatusOK, body
}

// reviews asks reviews for a product, up to the configured number of
// attempts, each within the reviews timeout. Any failure is tried again,
// as in the original. It returns 200 and the answer, or the HTTP status of
// the last failure.
func (s *server) reviews(ctx context.Context, id string, fwd []string) (int, *bookinfopb.ProductReviews) {
	var err error
	for range s.cfg.reviewsAttempts {
		var resp *bookinfopb.ProductReviews
		resp, err = s.getReviews(ctx, id, fwd)
		if err == nil {
			s.metrics.inc(ctx, "reviews", http.StatusOK)
			return http.StatusOK, resp
		}
		if ctx.Err() != nil { // the caller is gone: no use trying again
			break
		}
	}
	code := httpStatus(err)
	s.metrics.inc(ctx, "reviews", code)
	return code, nil
}

func (s *server) getReviews(ctx context.Context, id string, fwd []string) (*bookinfopb.ProductReviews, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.reviewsTimeout)
	defer cancel()
	return s.reviewsClient.GetReviews(forward.ToOutgoingMetadata(ctx, fwd), &bookinfopb.GetReviewsRequest{ProductId: id})
}

// ratings asks ratings for a product, once, within the ratings timeout.
// It returns 200 and the answer, or the HTTP status of the failure.
func (s *server) ratings(ctx context.Context, id string, fwd []string) (int, *bookinfopb.ProductRatings) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ratingsTimeout)
	defer cancel()
	resp, err := s.ratingsClient.GetRatings(forward.ToOutgoingMetadata(ctx, fwd), &bookinfopb.GetRatingsRequest{ProductId: id})
	code := http.StatusOK
	if err != nil {
		code = httpStatus(err)
	}
	s.metrics.inc(ctx, "ratings", code)
	return code, resp
}

// httpStatus maps the error of a gRPC call to the HTTP status productpage
// answers with: InvalidArgument 400, NotFound 404, Unimplemented 501, and
// 500 for everything else, time-outs included.
func httpStatus(err error) int {
	switch status.Code(err) {
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.Unimplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}
