package receipt_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/receipt"
)

// TestParseReadsAtMostMaxLen: nothing past the first MaxLen bytes of a
// header value is read, however the value is laid out.
func TestParseReadsAtMostMaxLen(t *testing.T) {
	// A hop that starts after MaxLen bytes is not seen.
	hops, err := receipt.Parse(strings.Repeat(" ", receipt.MaxLen) + ",svc=late")
	require.NoError(t, err)
	assert.Empty(t, hops)

	// A value that runs past MaxLen is cut there.
	hops, err = receipt.Parse("svc=" + strings.Repeat("a", 2*receipt.MaxLen))
	require.NoError(t, err)
	require.Len(t, hops, 1)
	assert.Len(t, hops[0].Service, receipt.MaxLen-len("svc="))

	// An escape cut in half by the limit makes its hop malformed; the hops
	// before it are kept.
	head := "svc=a, svc="
	if (receipt.MaxLen-len(head))%3 == 0 {
		head = "svc=a,  svc=" // make the limit fall inside an escape
	}
	hops, err = receipt.Parse(head + strings.Repeat("%41", receipt.MaxLen))
	assert.ErrorIs(t, err, receipt.ErrMalformed)
	require.Len(t, hops, 1)
	assert.Equal(t, "a", hops[0].Service)
}

// TestReceiptHoldsAtMostMaxHops: hops added by many downstream answers,
// each at the parser's limit, never grow a Receipt past MaxHops.
func TestReceiptHoldsAtMostMaxHops(t *testing.T) {
	r := receipt.New(receipt.Hop{Service: "front"}, true)
	answer := strings.Repeat("svc=x;inst=y, ", receipt.MaxHops*2)
	for range 100 {
		hops, _ := receipt.Parse(answer)
		require.LessOrEqual(t, len(hops), receipt.MaxHops)
		r.Add(hops...)
	}
	assert.Len(t, r.Hops(), receipt.MaxHops)
	assert.Equal(t, "front", r.Owner().Service, "the owner's hop is never pushed out")
}

// TestCallerOnlyAcceptsServiceNames: the caller named in a receipt request
// is recorded only when it is a plausible service name.
func TestCallerOnlyAcceptsServiceNames(t *testing.T) {
	for in, want := range map[string]string{
		receipt.Ask:                    "",
		"productpage":                  "productpage",
		"":                             "",
		"a b":                          "",
		"evil\r\nSet-Cookie: x=1":      "",
		"<script>":                     "",
		strings.Repeat("a", 64):        "",
		"reviews-v2.default.svc_local": "reviews-v2.default.svc_local",
	} {
		assert.Equal(t, want, receipt.Caller(in), "%q", in)
	}
}

// TestEncodeEscapesControlBytes: whatever a downstream reported, the header
// value Encode writes holds no byte that could end or split a header line.
func TestEncodeEscapesControlBytes(t *testing.T) {
	s := receipt.Encode([]receipt.Hop{{
		Service: "a\r\nX-Injected: 1", Instance: "b\x00c", Lane: "l,m;n=o", Error: "e\x7f\xff",
	}})
	for i := 0; i < len(s); i++ {
		assert.True(t, s[i] >= 0x20 && s[i] < 0x7f, "byte %#x at %d of %q", s[i], i, s)
	}
	hops, err := receipt.Parse(s)
	require.NoError(t, err)
	require.Len(t, hops, 1)
	assert.Equal(t, "a\r\nX-Injected: 1", hops[0].Service)
	assert.Equal(t, "l,m;n=o", hops[0].Lane)
}
