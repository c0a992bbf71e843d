package ingress_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/ingress"
)

// regexRules writes a rule file with n rules whose header condition is the
// regular expression re.
func regexRules(n int, re string) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: r%d\n    lane: gray\n    match:\n      header:\n        x-user: {regex: '%s'}\n", i, re)
	}
	return b.String()
}

// TestRegexMemoryIsBounded loads the rule file of the review: 40 rules, each
// a 200-way choice repeated {1000} times (about 43 KB, well under
// MaxFileSize). It used to take seconds and hundreds of MiB to compile; it
// must now be refused at once, with an error naming the file and the line
// of the first such expression.
func TestRegexMemoryIsBounded(t *testing.T) {
	alts := make([]string, 200)
	chars := make([]string, 200)
	for i := range alts {
		alts[i] = fmt.Sprintf("a%03d", i)
		chars[i] = string(rune(0x4e00 + 3*i))
	}
	for _, tt := range []struct {
		name, re string
		rule     int // the rule named in the error
		msg      string
	}{
		{"choice of 200", "(" + strings.Join(alts, "|") + "){1000}", 0, "expression too large"},
		{"long literal", "(" + strings.Repeat("abcd", 200) + "){1000}", 0, "expression too large"},
		// Classes cost little each: the total runs out.
		{"class of 200", "(x[" + strings.Join(chars, "") + "]){1000}", 6, "expressions too large in total"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := regexRules(40, tt.re)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := ingress.Parse("rules.yaml", []byte(data))
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			require.Error(t, err)
			var fe *ingress.FieldError
			require.True(t, errors.As(err, &fe))
			assert.Equal(t, "rules.yaml", fe.File)
			line := 6 + 5*tt.rule // the line of the expression
			path := fmt.Sprintf("rules[%d].match.header.x-user.regex", tt.rule)
			assert.Equal(t, line, fe.Line)
			assert.Equal(t, path, fe.Path)
			assert.True(t, strings.HasPrefix(err.Error(), fmt.Sprintf("rules.yaml:%d: %s: %s", line, path, tt.msg)), err.Error())
			alloc := after.TotalAlloc - before.TotalAlloc
			assert.Less(t, alloc, uint64(16<<20), "allocated %d bytes", alloc)
			t.Logf("%d bytes of rules refused in %v, %d KiB allocated", len(data), elapsed, alloc>>10)
		})
	}
}

func TestRegexTotalSize(t *testing.T) {
	// About 4000 instructions each: accepted alone, 13 of them are too many.
	re := "[a-z]{1,1000}x{1000}"
	_, err := ingress.Parse("rules.yaml", []byte(regexRules(1, re)))
	require.NoError(t, err)
	_, err = ingress.Parse("rules.yaml", []byte(regexRules(13, re)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expressions too large in total")

	// Ordinary expressions are far from the limits.
	_, err = ingress.Parse("rules.yaml", []byte(regexRules(100, `[A-Za-z0-9._-]{1,63}@example\.(com|org)`)))
	require.NoError(t, err)
}
