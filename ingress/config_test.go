package ingress_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/ingress"
)

// TestExampleFiles loads the example rule files and checks what they do.
func TestExampleFiles(t *testing.T) {
	rs, err := ingress.Load("testdata/rules.yaml")
	require.NoError(t, err)
	assert.Equal(t, 4, rs.Len())
	assert.Equal(t, []string{"blue", "gray"}, rs.Lanes())
	assert.Len(t, rs.Digest(), 16)

	tests := []struct {
		name     string
		method   string
		target   string
		h        http.Header
		wantRule string
		wantLane string
	}{
		{"testers", "GET", "/", http.Header{"X-User-Group": {"testers"}}, "testers", "gray"},
		{"beta cookie on the API", "GET", "/api/books", http.Header{"Cookie": {"beta=1"}}, "beta-cookie", "gray"},
		{"beta cookie elsewhere", "GET", "/books", http.Header{"Cookie": {"beta=1"}}, "", ""},
		{"mobile v3", "POST", "/", http.Header{"User-Agent": {"BookApp/3.12 (Android 14)"}}, "mobile-v3", "blue"},
		{"mobile v3 wrong method", "DELETE", "/", http.Header{"User-Agent": {"BookApp/3.12 (Android 14)"}}, "", ""},
		{"mobile v4", "GET", "/", http.Header{"User-Agent": {"BookApp/4.0 (Android 14)"}}, "", ""},
		{"no user id", "GET", "/", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := rs.Evaluate(request(tt.method, tt.target, tt.h))
			assert.Equal(t, tt.wantRule, d.RuleName)
			assert.Equal(t, tt.wantLane, d.Tag.String())
		})
	}

	js, err := ingress.Load("testdata/rules.json")
	require.NoError(t, err)
	assert.Equal(t, 2, js.Len())
	assert.Equal(t, "testers", js.Evaluate(request("GET", "/", http.Header{"X-User-Group": {"testers"}})).RuleName)
}

// TestYAMLAndJSONAgree parses the same rule set written both ways, with and
// without a telling extension.
func TestYAMLAndJSONAgree(t *testing.T) {
	y := `
lanes: [gray]
rules:
  - name: a
    lane: gray
    match: {header: {x-a: {prefix: "1"}}, query: {q: {present: true}}}
`
	j := `{"lanes": ["gray"], "rules": [{"name": "a", "lane": "gray",
	  "match": {"header": {"x-a": {"prefix": "1"}}, "query": {"q": {"present": true}}}}]}`
	for _, c := range []struct{ name, data string }{
		{"rules.yaml", y}, {"rules", y}, {"rules.json", j}, {"rules", j}, {"rules.conf", "  \n" + j},
	} {
		rs, err := ingress.Parse(c.name, []byte(c.data))
		require.NoError(t, err, c.name)
		assert.Equal(t, "a", rs.Evaluate(request("GET", "/?q", http.Header{"X-A": {"12"}})).RuleName, c.name)
		assert.Equal(t, "", rs.Evaluate(request("GET", "/", http.Header{"X-A": {"12"}})).RuleName, c.name)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		data string
		want []string // each a line of the error
	}{
		{"bad regex", "rules.yaml", `
rules:
  - name: a
    lane: gray
  - name: b
    lane: gray
  - name: c
    lane: gray
    match:
      header:
        x-user:
          regex: "(gray"
`, []string{"rules.yaml:12: rules[2].match.header.x-user.regex: missing closing ): `(gray`"}},
		{"unknown field", "rules.yaml", "rules:\n  - name: a\n    lane: gray\n    lanes: [x]\n",
			[]string{"rules.yaml:4: rules[0].lanes: unknown field; allowed here: name, lane, match, percent, sticky"}},
		{"unknown top-level field", "r.yaml", "rule: []\n", []string{"r.yaml:1: rule: unknown field; allowed here: version, lanes, default, trust, rules"}},
		{"repeated field", "r.yaml", "default: gray\ndefault: blue\n", []string{"r.yaml:2: default: repeated; each field may appear once"}},
		{"repeated header", "r.yaml", "rules: [{name: a, lane: b, match: {header: {x: a, x: b}}}]\n",
			[]string{"r.yaml:1: rules[0].match.header.x: repeated; each field may appear once"}},
		{"wrong type", "r.yaml", "rules: {name: a}\n", []string{"r.yaml:1: rules: must be a list, not a mapping"}},
		{"null lane", "r.yaml", "rules:\n- name: a\n  lane:\n", []string{"r.yaml:3: rules[0].lane: must be a string, not empty"}},
		{"missing lane and name", "r.yaml", "rules:\n- match: {}\n", []string{
			"r.yaml:2: rules[0].name: missing; every rule needs a unique name",
			"r.yaml:2: rules[0].lane: missing; every rule assigns a lane"}},
		{"invalid lane", "r.yaml", "rules:\n- name: a\n  lane: gray lane\n",
			[]string{`r.yaml:3: rules[0].lane: invalid tag: "gray lane" has ' ' at offset 4; allowed are letters, digits, '.', '_' and '-'`}},
		{"invalid name", "r.yaml", "rules:\n- name: my rule\n  lane: gray\n",
			[]string{`r.yaml:2: rules[0].name: "my rule": use 1 to 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit`}},
		{"duplicate names", "r.yaml", "rules:\n- {name: a, lane: gray}\n- {name: a, lane: blue}\n",
			[]string{`r.yaml:3: rules[1].name: "a" is also the name of rules[0]; names must be unique`}},
		{"percent over 100", "r.yaml", "rules: [{name: a, lane: b, percent: 100.01}]", []string{`r.yaml:1: rules[0].percent: "100.01": over 100`}},
		{"percent three decimals", "r.yaml", "rules: [{name: a, lane: b, percent: 0.125}]",
			[]string{`r.yaml:1: rules[0].percent: "0.125": at most two decimals (steps of 0.01%)`}},
		{"percent negative", "r.yaml", "rules: [{name: a, lane: b, percent: -1}]", []string{`rules[0].percent: "-1": write the percentage as a plain decimal`}},
		{"percent string", "r.yaml", `rules: [{name: a, lane: b, percent: "10"}]`, []string{`rules[0].percent: must be a number from 0 to 100, not "10"`}},
		{"percent exponent", "r.yaml", "rules: [{name: a, lane: b, percent: 1e1}]", []string{`"1e1": write the percentage as a plain decimal`}},
		{"sticky without percent", "r.yaml", "rules:\n- name: a\n  lane: b\n  sticky: {header: x-user}\n",
			[]string{"r.yaml:4: rules[0].sticky: needs percent: it keys the percentage of the rule"}},
		{"sticky header and cookie", "r.yaml", "rules:\n- name: a\n  lane: b\n  percent: 5\n  sticky: {header: x, cookie: y}\n",
			[]string{"r.yaml:5: rules[0].sticky: needs exactly one of header and cookie"}},
		{"sticky missing value", "r.yaml", "rules:\n- name: a\n  lane: b\n  percent: 5\n  sticky: {header: x, missing: sometimes}\n",
			[]string{`r.yaml:5: rules[0].sticky.missing: unknown value "sometimes"; use "none" or "random"`}},
		{"two operators", "r.yaml", "rules: [{name: a, lane: b, match: {header: {x: {exact: a, prefix: b}}}}]",
			[]string{"r.yaml:1: rules[0].match.header.x: takes only one of exact, prefix, regex and present, found 2"}},
		{"no operator", "r.yaml", "rules: [{name: a, lane: b, match: {cookie: {x: {}}}}]",
			[]string{"r.yaml:1: rules[0].match.cookie.x: needs one of exact, prefix, regex and present"}},
		{"present not bool", "r.yaml", "rules: [{name: a, lane: b, match: {query: {x: {present: yes}}}}]",
			[]string{`r.yaml:1: rules[0].match.query.x.present: must be true or false, not "yes"`}},
		{"bad header name", "r.yaml", "rules: [{name: a, lane: b, match: {header: {\"x y\": a}}}]",
			[]string{`rules[0].match.header.x y: "x y" is not a valid name`}},
		{"bad method", "r.yaml", "rules: [{name: a, lane: b, match: {method: [GET, \"P T\"]}}]",
			[]string{`r.yaml:1: rules[0].match.method[1]: "P T" is not an HTTP method`}},
		{"path prefix without slash", "r.yaml", "rules: [{name: a, lane: b, match: {pathPrefix: api}}]",
			[]string{`rules[0].match.pathPrefix: "api" must start with '/'`}},
		{"bad peer", "r.yaml", "trust:\n  peers:\n    - 10.0.0.0/8\n    - 10.0.0.300\n",
			[]string{`r.yaml:4: trust.peers[1]: "10.0.0.300" is not an IP address or a CIDR prefix such as 10.0.0.0/8`}},
		{"bad proxy", "r.yaml", "trust: {proxies: [fe80::1%eth0]}", []string{`trust.proxies[0]: "fe80::1%eth0" is not an IP address`}},
		{"bad allowed lane", "r.yaml", "trust: {lanes: [gray, -*, \"a b\"]}", []string{
			`trust.lanes[1]: "-*": a prefix pattern is the start of a lane name followed by '*'`,
			`trust.lanes[2]: invalid tag`}},
		{"duplicate lane", "r.yaml", "lanes: [gray, gray]", []string{`r.yaml:1: lanes[1]: lane "gray" listed twice`}},
		{"version", "r.yaml", "version: 2\n", []string{`r.yaml:1: version: unknown version "2"; this release reads version 1`}},
		{"anchors", "r.yaml", "lanes: &l [gray]\ntrust: {lanes: *l}\n", []string{"r.yaml:1: lanes: anchors and aliases are not supported", "r.yaml:2: trust.lanes: anchors and aliases are not supported"}},
		{"two documents", "r.yaml", "lanes: [a]\n---\nlanes: [b]\n", []string{"r.yaml:2: more than one YAML document; put everything in one"}},
		{"empty", "r.yaml", "", []string{`r.yaml: empty file; a rule set that assigns nothing is written "rules: []"`}},
		{"only a comment", "r.yaml", "# nothing\n", []string{`r.yaml: empty file`}},
		{"not a mapping", "r.yaml", "- a\n- b\n", []string{"r.yaml:1: must be a mapping, not a list"}},
		{"YAML syntax", "r.yaml", "rules:\n  - name: a\n   lane: b\n", []string{"r.yaml:1: did not find expected '-' indicator"}},
		{"JSON syntax", "r.json", "{\n  \"rules\": [\n    {\"name\": \"a\",}\n  ]\n}", []string{"r.json:3: invalid JSON: invalid character '}'"}},
		{"JSON repeated key", "r.json", `{"default": "a", "default": "b"}`, []string{"r.json:1: default: repeated"}},
		{"JSON unknown field", "r.json", "{\n\t\"rules\": [{\"name\": \"a\", \"lane\": \"b\", \"weight\": 3}]\n}",
			[]string{"r.json:2: rules[0].weight: unknown field"}},
		{"custom tag", "r.yaml", "default: !!binary Z3JheQ==\n", []string{"r.yaml:1: default: tag !!binary is not supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ingress.Parse(tt.file, []byte(tt.data))
			require.Error(t, err)
			assert.Nil(t, rs)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(tt.want), "%v", err)
			for i, w := range tt.want {
				assert.Contains(t, lines[i], w)
			}
			var fe *ingress.FieldError
			require.True(t, errors.As(err, &fe))
			assert.Equal(t, tt.file, fe.File)
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte("# " + strings.Repeat("x", ingress.MaxFileSize) + "\nrules: []\n")
	_, err := ingress.Parse("big.yaml", data)
	require.Error(t, err)
	assert.Equal(t, "big.yaml: file is larger than 1048576 bytes", err.Error())

	path := filepath.Join(t.TempDir(), "big.yaml")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	_, err = ingress.Load(path)
	assert.ErrorContains(t, err, "file is larger than")
}

func TestParseManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for range 30 {
		b.WriteString("- {name: a b, lane: b}\n")
	}
	_, err := ingress.Parse("r.yaml", []byte(b.String()))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	assert.Len(t, lines, 21)
	assert.Equal(t, "r.yaml: 39 more problems not shown", lines[20], "30 invalid names, 29 repeated ones")
}

func TestLoadMissingFile(t *testing.T) {
	_, err := ingress.Load(filepath.Join(t.TempDir(), "none.yaml"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestCompileErrors(t *testing.T) {
	_, err := ingress.Compile(ingress.Config{
		Default: "-",
		Rules: []ingress.Rule{
			{Name: "a", Lane: "gray", Percent: ingress.Percent(12.345)},
			{Name: "b", Lane: "gray", Match: ingress.Match{Header: map[string]ingress.Condition{"x": {}}}},
			{Name: "c", Lane: "gray", Match: ingress.Match{Cookie: map[string]ingress.Condition{"x": ingress.Regex("[")}}},
			{Name: "d", Lane: "gray", Percent: ingress.Percent(101)},
			{Name: "e", Lane: "gray", Percent: ingress.Percent(1), Sticky: &ingress.Sticky{Header: "x", Missing: 7}},
		},
	})
	require.Error(t, err)
	assert.Equal(t, strings.Join([]string{
		`default: invalid tag: "-" must start with a letter or digit, found '-' at offset 0`,
		"rules[0].percent: 12.345: at most two decimals (steps of 0.01%)",
		"rules[1].match.header.x: no condition; use one of exact, prefix, regex and present",
		"rules[2].match.cookie.x.regex: missing closing ]: `[`",
		"rules[3].percent: 101: must be from 0 to 100",
		"rules[4].sticky.missing: unknown value Missing(7); use none or random",
	}, "\n"), err.Error())

	rs, err := ingress.Compile(ingress.Config{Rules: []ingress.Rule{{Name: "a", Lane: "gray", Percent: ingress.Percent(33.33)}}})
	require.NoError(t, err)
	assert.Equal(t, "", rs.Digest(), "no file, no digest")
}

// TestDocSnippet parses the rule file shown in RULES.md, so that the
// documentation stays valid.
func TestDocSnippet(t *testing.T) {
	doc, err := os.ReadFile("RULES.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	require.True(t, ok)
	snippet, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	rs, err := ingress.Parse("RULES.md", []byte(snippet))
	require.NoError(t, err)
	assert.Equal(t, 3, rs.Len())
	d := rs.Evaluate(request("POST", "/api/x?ui=v2.1", http.Header{"Cookie": {"beta=1"}}))
	assert.Equal(t, "beta-cookie", d.RuleName)
}
