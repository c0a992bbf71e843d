package ingress_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/graylane/graylane/ingress"
)

// TestYAMLSyntaxErrorLines pins how the line of a YAML syntax error is
// found. go.yaml.in/yaml/v3 has no structured syntax error: it reports
// "yaml: line N: message", and Parse reads N out of that text (yamlLineError
// in parse.go). If the library ever rewords its errors, the first half of
// this test fails, naming the new wording, instead of rule-file errors
// silently losing their line numbers.
func TestYAMLSyntaxErrorLines(t *testing.T) {
	tests := []struct {
		name, data string
		raw        string // the library's own error
		want       string // Parse's error
		line       int
	}{
		{"unclosed list", "rules:\n  - name: a\n    lane: [gray\n",
			"yaml: line 2: did not find expected ',' or ']'", "r.yaml:2: did not find expected ',' or ']'", 2},
		{"tab indentation", "rules:\n  - name: a\n\tlane: gray\n",
			"yaml: line 2: found a tab character that violates indentation", "r.yaml:2: found a tab character that violates indentation", 2},
		{"unclosed quote", "version: 1\nlanes: [a, b]\ndefault: \"gray\n",
			"yaml: line 3: found unexpected end of stream", "r.yaml:3: found unexpected end of stream", 3},
		{"bad indentation", "version: 1\n  lanes: x\n",
			"yaml: line 2: mapping values are not allowed in this context", "r.yaml:2: mapping values are not allowed in this context", 2},
		// The library gives no line for a problem it places on the first
		// line; neither does Parse.
		{"first line", "a: b: c\n",
			"yaml: mapping values are not allowed in this context", "r.yaml: mapping values are not allowed in this context", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n yaml.Node
			err := yaml.NewDecoder(bytes.NewReader([]byte(tt.data))).Decode(&n)
			require.Error(t, err)
			require.Equal(t, tt.raw, err.Error(), "go.yaml.in/yaml reworded its syntax errors: update yamlLineError in parse.go")

			_, err = ingress.Parse("r.yaml", []byte(tt.data))
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
			var fe *ingress.FieldError
			require.True(t, errors.As(err, &fe))
			assert.Equal(t, tt.line, fe.Line)
		})
	}
}
