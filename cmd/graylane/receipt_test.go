package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/receipt"
)

// walkthrough is a receipt of the Bookinfo walkthrough: gray reviews, the
// rest by fallback, and the edge's note.
const walkthrough = "svc=gateway;inst=gateway;tag=gray;note=rule%200%20(testers)%20-%3E%20gray, " +
	"svc=productpage;inst=productpage-v1-0;lane=prod;tag=gray;fallback=noinstances;from=gateway, " +
	"svc=details;inst=details-v1-0;lane=prod;tag=gray;fallback=noinstances;from=productpage, " +
	"svc=reviews;inst=reviews-v2-0;lane=gray;tag=gray;from=productpage, " +
	"svc=ratings;tag=gray;from=reviews;error=graylane%3A%20strict"

func TestReceiptTable(t *testing.T) {
	code, stdout, stderr := runCmd(t, "", "receipt", walkthrough)
	require.Equal(t, exitOK, code, stderr)
	golden(t, "receipt.golden", stdout)

	code, fromStdin, _ := runCmd(t, walkthrough+"\n", "receipt")
	require.Equal(t, exitOK, code)
	assert.Equal(t, stdout, fromStdin, "the value on stdin")
	code, fromDash, _ := runCmd(t, walkthrough, "receipt", "-")
	require.Equal(t, exitOK, code)
	assert.Equal(t, stdout, fromDash, "- reads stdin")

	code, untagged, _ := runCmd(t, "", "receipt", "svc=productpage;inst=productpage-v1-0;lane=prod")
	require.Equal(t, exitOK, code)
	golden(t, "receipt-untagged.golden", untagged)
}

func TestReceiptJSON(t *testing.T) {
	code, stdout, stderr := runCmd(t, "", "receipt", "-o", "json", walkthrough)
	require.Equal(t, exitOK, code, stderr)
	var got receiptJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	want, err := receipt.Parse(walkthrough)
	require.NoError(t, err)
	require.Len(t, got.Hops, len(want))
	for i, h := range want {
		assert.Equal(t, hopJSON(h), got.Hops[i])
	}
	assert.Empty(t, got.Error)
	assert.Equal(t, "rule 0 (testers) -> gray", got.Hops[0].Note)
}

// TestReceiptBadInput: what cannot be read is said clearly, with exit
// status 1 (2 for a bad argument); the hops before a malformed one are
// still shown.
func TestReceiptBadInput(t *testing.T) {
	code, stdout, stderr := runCmd(t, "", "receipt", "svc=a;inst=a-0;lane=prod, garbage, svc=b")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stdout, "a-0")
	assert.NotContains(t, stdout, "svc=b")
	assert.Equal(t, "graylane receipt: malformed route receipt: \"garbage\" is not key=value\n", stderr)

	code, stdout, _ = runCmd(t, "", "receipt", "-o", "json", "svc=a;lane=prod, lane=x")
	assert.Equal(t, exitFailure, code)
	var got receiptJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	assert.Len(t, got.Hops, 1)
	assert.Contains(t, got.Error, "has no svc")

	code, stdout, stderr = runCmd(t, "", "receipt", "complete garbage")
	assert.Equal(t, exitFailure, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "malformed route receipt")

	code, _, stderr = runCmd(t, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>", "receipt")
	assert.Equal(t, exitFailure, code)
	assert.Equal(t, "graylane receipt: stdin: no x-graylane-route header in the input (1 response(s) read)\n", stderr)

	code, _, stderr = runCmd(t, "  \n", "receipt")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "empty input")

	code, _, stderr = runCmd(t, "x-graylane-route: svc=a\n"+strings.Repeat("x", maxLine+1)+"\n", "receipt")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "longer than")
}

func TestRouteHeader(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		err            error
	}{
		{name: "bare value", in: "svc=a;lane=prod", want: "svc=a;lane=prod"},
		{name: "bare value, newline", in: "svc=a;lane=prod\n", want: "svc=a;lane=prod"},
		{name: "header line", in: "X-Graylane-Route: svc=a;lane=prod\r\n", want: "svc=a;lane=prod"},
		{name: "curl -D -", in: "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nx-graylane-route: svc=a;lane=prod, svc=b;lane=gray\r\nContent-Length: 3\r\n\r\n", want: "svc=a;lane=prod, svc=b;lane=gray"},
		{name: "HTTP/2", in: "HTTP/2 200 \nx-graylane-route: svc=a\n\n", want: "svc=a"},
		{name: "duplicate headers", in: "HTTP/1.1 200 OK\r\nX-Graylane-Route: svc=a\r\nOther: 1\r\nx-graylane-route: svc=b\r\n\r\n", want: "svc=a, svc=b"},
		{name: "folded header", in: "HTTP/1.1 200 OK\r\nx-graylane-route: svc=a;lane=prod,\r\n\tsvc=b;lane=gray\r\n  \r\n\r\n", want: "svc=a;lane=prod, svc=b;lane=gray"},
		{name: "folding of another header ignored", in: "HTTP/1.1 200 OK\r\nVia: a\r\n x-graylane-route: svc=evil\r\nx-graylane-route: svc=a\r\n\r\n", want: "svc=a"},
		{name: "curl -i with a body", in: "HTTP/1.1 200 OK\r\nx-graylane-route: svc=a\r\n\r\n<html>\nx-graylane-route: svc=body\n</html>\n", want: "svc=a"},
		{name: "100 Continue first", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nx-graylane-route: svc=a\r\n\r\n", want: "svc=a"},
		{name: "redirect: the last response", in: "HTTP/1.1 302 Found\r\nx-graylane-route: svc=old\r\nLocation: /b\r\n\r\nHTTP/1.1 200 OK\r\nx-graylane-route: svc=new\r\n\r\n", want: "svc=new"},
		{name: "redirect: last response without one", in: "HTTP/1.1 302 Found\r\nx-graylane-route: svc=old\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", want: "svc=old"},
		{name: "no empty line at the end", in: "HTTP/1.1 200 OK\r\nx-graylane-route: svc=a", want: "svc=a"},
		{name: "empty values skipped", in: "HTTP/1.1 200 OK\r\nx-graylane-route:\r\nx-graylane-route: svc=a\r\n\r\n", want: "svc=a"},
		{name: "no receipt", in: "HTTP/1.1 503 Service Unavailable\r\n\r\n", err: errNoReceipt},
		{name: "status-like line in a bare value", in: "svc=a\nHTTP/1.1 200 OK", want: "svc=a HTTP/1.1 200 OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := routeHeader(strings.NewReader(tc.in))
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzRouteHeader: untrusted stdin never panics the reader, and what it
// returns is bounded by what it read.
func FuzzRouteHeader(f *testing.F) {
	for _, s := range []string{
		walkthrough,
		"HTTP/1.1 200 OK\r\nx-graylane-route: svc=a\r\n\tsvc=b\r\n\r\nbody",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/2 200\r\nX-Graylane-Route: svc=a\r\n\r\n",
		"x-graylane-route: svc=a\nx-graylane-route: svc=b",
		"HTTP/1.1 999 \r\n\r\n",
		"\r\n\r\n",
		" \tx",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := routeHeader(strings.NewReader(string(in)))
		if err != nil {
			if errors.Is(err, errNoReceipt) {
				assert.Empty(t, v)
			}
			return
		}
		assert.LessOrEqual(t, len(v), len(in)+len(in)/2, "joining adds at most ', ' per header")
		if utf8.Valid(in) {
			assert.True(t, utf8.ValidString(v))
		}
		_, _ = receipt.Parse(v)
	})
}
