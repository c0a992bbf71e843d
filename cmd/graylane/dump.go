package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/graylane/graylane/receipt"
)

// Limits on what routeHeader reads.
const (
	maxInput = 1 << 20 // bytes read from stdin
	maxLine  = 64 << 10
)

// errNoReceipt means the input holds no route receipt.
var errNoReceipt = errors.New("no " + receipt.Header + " header in the input")

// routeHeader returns the route receipt held by in, untrusted text that is
// one of:
//
//   - a dump of response headers, as curl -D - (or curl -i) writes it: a
//     status line "HTTP/…", header lines, an empty line, perhaps a body,
//     and, after redirects or 1xx responses, more of the same. The
//     receipt is the x-graylane-route header of the last response that
//     has one; several such headers in it are one comma-separated list
//     (RFC 9110 §5.3), and continuation lines that start with a space or
//     a tab (obsolete line folding) belong to the header above;
//   - header lines without a status line ("x-graylane-route: …");
//   - the header's value alone.
//
// It reads at most maxInput bytes, and lines of at most maxLine bytes.
// CRLF and LF line ends are both accepted.
func routeHeader(in io.Reader) (string, error) {
	sc := bufio.NewScanner(io.LimitReader(in, maxInput))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var (
		lines      []string
		dump       bool     // the input starts with a status line
		inHeaders  bool     // between a status line and the empty line after it
		cur        []string // this response's receipt values
		last       []string // the values of the last response that had some
		prevIsOurs bool     // the header line above is x-graylane-route (for folding)
		responses  int
	)
	n := 0
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		n++
		// A dump starts with a status line; in a dump, a status line
		// after a response's headers starts the next response.
		if (n == 1 || dump) && !inHeaders && isStatusLine(line) {
			dump, inHeaders = true, true
			responses++
			cur, prevIsOurs = nil, false
			continue
		}
		if !dump {
			lines = append(lines, line)
			continue
		}
		if !inHeaders {
			continue // a body
		}
		if line == "" {
			inHeaders = false
			if cur != nil {
				last = cur
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' { // folded onto the header above
			if more := strings.TrimSpace(line); prevIsOurs && more != "" {
				cur[len(cur)-1] = strings.TrimSpace(cur[len(cur)-1] + " " + more)
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		prevIsOurs = ok && strings.EqualFold(strings.TrimSpace(name), receipt.Header)
		if prevIsOurs {
			cur = append(cur, strings.TrimSpace(value))
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return "", fmt.Errorf("a line of the input is longer than %d bytes", maxLine)
		}
		return "", err
	}
	if dump {
		if inHeaders && cur != nil { // the headers ended without an empty line
			last = cur
		}
		if last == nil {
			return "", fmt.Errorf("%w (%d response(s) read)", errNoReceipt, responses)
		}
		return joinValues(last), nil
	}
	// Header lines, or a bare value.
	var values []string
	headers := false
	for _, line := range lines {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), receipt.Header) {
			values = append(values, strings.TrimSpace(value))
			headers = true
		}
	}
	if headers {
		return joinValues(values), nil
	}
	v := strings.TrimSpace(strings.Join(lines, " "))
	if v == "" {
		return "", errors.New("empty input: want a " + receipt.Header + " value or a curl -D - dump")
	}
	return v, nil
}

// isStatusLine reports whether line is an HTTP status line, such as
// "HTTP/1.1 200 OK" or "HTTP/2 200".
func isStatusLine(line string) bool {
	rest, ok := strings.CutPrefix(line, "HTTP/")
	if !ok {
		return false
	}
	_, code, ok := strings.Cut(rest, " ")
	return ok && len(code) >= 3 && '1' <= code[0] && code[0] <= '5' && isDigit(code[1]) && isDigit(code[2]) && (len(code) == 3 || code[3] == ' ')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func joinValues(vs []string) string {
	out := vs[:0:0]
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return strings.Join(out, ", ")
}
