package forward

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/metadata"
)

func TestFromHTTP(t *testing.T) {
	h := http.Header{}
	h.Set("X-Request-Id", "r1")
	h.Set("End-User", "mallory")
	h.Set("User-Agent", "curl/8")
	h.Add("Cookie", "a=1")
	h.Add("Cookie", "b=2")
	h.Set("X-Traffic-Tag", "gray")
	h.Set("X-Unrelated", "x")

	assert.Equal(t, []string{
		"x-request-id", "r1",
		"user-agent", "curl/8",
		"cookie", "a=1",
		"cookie", "b=2",
	}, FromHTTP(h))
	assert.Empty(t, FromHTTP(http.Header{}))
}

func TestFromIncomingMetadata(t *testing.T) {
	md := metadata.Pairs(
		"x-request-id", "r1",
		"end-user", "jason",
		"user-agent", "grpc-go/1",
		"b3", "80f198ee56343ba8-e457b5a2e4d86bd1-1",
		"x-unrelated", "x",
	)
	ctx := metadata.NewIncomingContext(context.Background(), md)
	assert.Equal(t, []string{
		"x-request-id", "r1",
		"b3", "80f198ee56343ba8-e457b5a2e4d86bd1-1",
		"end-user", "jason",
	}, FromIncomingMetadata(ctx))
	assert.Empty(t, FromIncomingMetadata(context.Background()))
}

func TestToHTTP(t *testing.T) {
	h := http.Header{}
	ToHTTP(h, []string{"x-request-id", "r1", "cookie", "a=1", "cookie", "b=2", "end-user", "jason"})
	assert.Equal(t, "r1", h.Get("X-Request-Id"))
	assert.Equal(t, []string{"a=1", "b=2"}, h.Values("Cookie"))
	assert.Equal(t, "jason", h.Get("End-User"))
}

func TestToOutgoingMetadata(t *testing.T) {
	base := metadata.AppendToOutgoingContext(context.Background(), "x-traffic-tag", "gray")
	ctx := ToOutgoingMetadata(base, []string{"x-request-id", "r1", "user-agent", "curl/8", "end-user", "jason"})
	md, ok := metadata.FromOutgoingContext(ctx)
	assert.True(t, ok)
	assert.Equal(t, []string{"gray"}, md.Get("x-traffic-tag"), "keys set before are kept")
	assert.Equal(t, []string{"r1"}, md.Get("x-request-id"))
	assert.Equal(t, []string{"jason"}, md.Get("end-user"))
	assert.Empty(t, md.Get("user-agent"))

	assert.Equal(t, base, ToOutgoingMetadata(base, nil), "nothing to add leaves the context as it is")
}
