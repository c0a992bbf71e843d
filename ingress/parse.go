package ingress

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest rule file Parse, Load and Watch accept, in
// bytes.
const MaxFileSize = 1 << 20

// Parse reads a rule set from data, in YAML or JSON, and compiles it. name
// is used in error messages and picks the format by its extension (".json";
// ".yaml" or ".yml"); with any other extension, data starting with '{'
// (after white space) is JSON and anything else YAML. The schema is in the
// package documentation.
//
// Every problem found is returned, each as a *FieldError naming the line and
// the field. An empty file is an error (write "rules: []" for a rule set
// that assigns nothing), and so are unknown and repeated fields, more than
// one YAML document, anchors and aliases, and a file over MaxFileSize.
func Parse(name string, data []byte) (*Rules, error) {
	l, cfg, ok := decode(name, data)
	if !ok {
		return nil, l.err()
	}
	rs, err := compile(cfg, l)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	rs.digest = hex.EncodeToString(sum[:8])
	rs.name = name
	return rs, nil
}

// Load reads the rule file at path with Parse. Error messages name the file
// as path.
func Load(path string) (*Rules, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// readFile reads at most MaxFileSize+1 bytes of path.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ingress: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("ingress: %w", err)
	}
	return data, nil
}

type format uint8

const (
	formatYAML format = iota
	formatJSON
)

func formatOf(name string, data []byte) format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return formatJSON
	case ".yaml", ".yml":
		return formatYAML
	}
	if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
		return formatJSON
	}
	return formatYAML
}

// yamlLineError reads the line out of a syntax error of go.yaml.in/yaml/v3,
// which has no structured syntax error, only the text "yaml: line N: msg".
// TestYAMLSyntaxErrorLines pins that wording: it fails if the library
// changes it, rather than letting errors lose their lines unnoticed.
var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decode turns a rule file into a Config. It returns false when the file
// is not a well-formed YAML or JSON document; otherwise the list holds the
// problems of the fields, and the line of every field path it saw.
func decode(name string, data []byte) (*errorList, Config, bool) {
	l := &errorList{file: name, pos: map[string]int{}}
	if len(data) > MaxFileSize {
		l.add(0, "", "file is larger than %d bytes", MaxFileSize)
		return l, Config{}, false
	}
	if formatOf(name, data) == formatJSON {
		if err := checkJSON(data); err != nil {
			err.File = name
			l.errs = append(l.errs, err)
			return l, Config{}, false
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.add(0, "", "empty file; a rule set that assigns nothing is written \"rules: []\"")
			return l, Config{}, false
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := yamlLineError.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		l.add(line, "", "%s", msg)
		return l, Config{}, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line = 0
		}
		l.add(line, "", "more than one YAML document; put everything in one")
		return l, Config{}, false
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null" {
		l.add(doc.Line, "", "empty file; a rule set that assigns nothing is written \"rules: []\"")
		return l, Config{}, false
	}
	d := decoder{errorList: l}
	cfg := d.config(doc.Content[0])
	for _, e := range l.errs {
		l.skip = append(l.skip, e.Path)
	}
	return l, cfg, true
}

// checkJSON reports a JSON syntax error with its line.
func checkJSON(data []byte) *FieldError {
	var v any
	err := json.Unmarshal(data, &v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := min(int(se.Offset), len(data))
		return &FieldError{Line: 1 + bytes.Count(data[:off], []byte("\n")), Msg: "invalid JSON: " + se.Error()}
	}
	return &FieldError{Msg: "invalid JSON: " + err.Error()}
}

// decoder walks the YAML node tree of a rule file.
type decoder struct {
	*errorList
}

func (d *decoder) config(n *yaml.Node) Config {
	var c Config
	d.fields(n, "", []string{"version", "lanes", "default", "trust", "rules"}, func(key string, v *yaml.Node, p string) {
		switch key {
		case "version":
			if s, ok := d.scalar(v, p, "a number"); ok && s != "1" {
				d.add(v.Line, p, "unknown version %q; this release reads version 1", s)
			}
		case "lanes":
			c.Lanes = d.strings(v, p)
		case "default":
			c.Default, _ = d.str(v, p)
		case "trust":
			d.fields(v, p, []string{"peers", "proxies", "lanes"}, func(key string, v *yaml.Node, p string) {
				switch key {
				case "peers":
					c.Trust.Peers = d.strings(v, p)
				case "proxies":
					c.Trust.Proxies = d.strings(v, p)
				case "lanes":
					c.Trust.Lanes = d.strings(v, p)
				}
			})
		case "rules":
			if !d.kind(v, p, yaml.SequenceNode) {
				return
			}
			c.Rules = make([]Rule, len(v.Content))
			for i, item := range v.Content {
				ip := indexPath(p, i)
				d.pos[ip] = item.Line
				c.Rules[i] = d.rule(item, ip)
			}
		}
	})
	return c
}

func (d *decoder) rule(n *yaml.Node, path string) Rule {
	var r Rule
	d.fields(n, path, []string{"name", "lane", "match", "percent", "sticky"}, func(key string, v *yaml.Node, p string) {
		switch key {
		case "name":
			r.Name, _ = d.str(v, p)
		case "lane":
			r.Lane, _ = d.str(v, p)
		case "match":
			r.Match = d.match(v, p)
		case "percent":
			r.Percent = Percent(0) // reported below if bad; no "sticky needs percent" then
			s, ok := d.scalar(v, p, "a number")
			if !ok {
				return
			}
			if v.Tag != "!!int" && v.Tag != "!!float" {
				d.add(v.Line, p, "must be a number from 0 to 100, not %q", s)
				return
			}
			bps, err := parseBasisPoints(s)
			if err != nil {
				d.add(v.Line, p, "%v", err)
				return
			}
			r.Percent = Percent(float64(bps) / 100)
		case "sticky":
			var s Sticky
			d.fields(v, p, []string{"header", "cookie", "missing"}, func(key string, v *yaml.Node, p string) {
				switch key {
				case "header":
					s.Header, _ = d.str(v, p)
				case "cookie":
					s.Cookie, _ = d.str(v, p)
				case "missing":
					m, ok := d.str(v, p)
					if !ok {
						return
					}
					i := slices.Index(missingNames[:], m)
					if i < 0 {
						d.add(v.Line, p, "unknown value %q; use \"none\" or \"random\"", m)
						return
					}
					s.Missing = Missing(i)
				}
			})
			r.Sticky = &s
		}
	})
	return r
}

func (d *decoder) match(n *yaml.Node, path string) Match {
	var m Match
	d.fields(n, path, []string{"header", "cookie", "query", "pathPrefix", "method"}, func(key string, v *yaml.Node, p string) {
		switch key {
		case "header":
			m.Header = d.conditions(v, p)
		case "cookie":
			m.Cookie = d.conditions(v, p)
		case "query":
			m.Query = d.conditions(v, p)
		case "pathPrefix":
			m.PathPrefix, _ = d.str(v, p)
		case "method":
			m.Method = d.strings(v, p)
		}
	})
	return m
}

// conditions reads a mapping of names to conditions.
func (d *decoder) conditions(n *yaml.Node, path string) map[string]Condition {
	if !d.kind(n, path, yaml.MappingNode) {
		return nil
	}
	out := make(map[string]Condition, len(n.Content)/2)
	d.entries(n, path, func(key string, v *yaml.Node, p string) {
		if c, ok := d.condition(v, p); ok {
			out[key] = c
		}
	})
	return out
}

// condition reads {exact|prefix|regex: string} or {present: bool}, or a
// bare string, short for {exact: string}.
func (d *decoder) condition(n *yaml.Node, path string) (Condition, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return Exact(n.Value), true
	}
	var c Condition
	set, before := 0, len(d.errs)
	d.fields(n, path, []string{"exact", "prefix", "regex", "present"}, func(key string, v *yaml.Node, p string) {
		set++
		switch key {
		case "exact", "prefix", "regex":
			s, ok := d.str(v, p)
			if !ok {
				return
			}
			c.Value = s
			switch key {
			case "exact":
				c.Op = OpExact
			case "prefix":
				c.Op = OpPrefix
			default:
				c.Op = OpRegex
			}
		case "present":
			if !d.kind(v, p, yaml.ScalarNode) {
				return
			}
			var b bool
			if v.Tag != "!!bool" || v.Decode(&b) != nil {
				d.add(v.Line, p, "must be true or false, not %q", v.Value)
				return
			}
			c.Op = OpAbsent
			if b {
				c.Op = OpPresent
			}
		}
	})
	switch {
	case n.Kind != yaml.MappingNode || len(d.errs) > before:
	case set == 0:
		d.add(n.Line, path, "needs one of exact, prefix, regex and present")
	case set > 1:
		d.add(n.Line, path, "takes only one of exact, prefix, regex and present, found %d", set)
		return Condition{}, false
	}
	return c, c.Op != 0
}

// fields walks the mapping n, calling set for each key of known. Unknown
// and repeated keys are errors.
func (d *decoder) fields(n *yaml.Node, path string, known []string, set func(key string, v *yaml.Node, path string)) {
	if !d.kind(n, path, yaml.MappingNode) {
		return
	}
	d.entries(n, path, func(key string, v *yaml.Node, p string) {
		if !slices.Contains(known, key) {
			d.add(d.pos[p], p, "unknown field; allowed here: %s", strings.Join(known, ", "))
			return
		}
		set(key, v, p)
	})
}

// entries walks the mapping n, whose keys are strings, once per key.
func (d *decoder) entries(n *yaml.Node, path string, each func(key string, v *yaml.Node, path string)) {
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.kind(k, path, yaml.ScalarNode) {
			continue
		}
		p := joinPath(path, k.Value)
		if seen[k.Value] {
			d.add(k.Line, p, "repeated; each field may appear once")
			continue
		}
		seen[k.Value] = true
		d.pos[p] = k.Line
		each(k.Value, v, p)
	}
}

// kind checks that n is of kind want, and no anchor or alias.
func (d *decoder) kind(n *yaml.Node, path string, want yaml.Kind) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.add(n.Line, path, "anchors and aliases are not supported")
		return false
	}
	if n.Kind != want {
		d.add(n.Line, path, "must be %s, not %s", kindName(want), describe(n))
		return false
	}
	return true
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "empty"
		case "!!str":
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return "a " + n.Tag
}

// scalar returns the text of a non-null scalar.
func (d *decoder) scalar(n *yaml.Node, path, what string) (string, bool) {
	if !d.kind(n, path, yaml.ScalarNode) {
		return "", false
	}
	if n.Tag == "!!null" {
		d.add(n.Line, path, "must be %s, not empty", what)
		return "", false
	}
	if n.Tag == "!!binary" || strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		d.add(n.Line, path, "tag %s is not supported", n.Tag)
		return "", false
	}
	return n.Value, true
}

// str returns the text of a scalar; numbers and booleans are taken as
// written.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	return d.scalar(n, path, "a string")
}

// strings reads a list of strings; a single string is a list of one.
func (d *decoder) strings(n *yaml.Node, path string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		s, ok := d.str(n, path)
		if !ok {
			return nil
		}
		return []string{s}
	}
	if !d.kind(n, path, yaml.SequenceNode) {
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		p := indexPath(path, i)
		d.pos[p] = item.Line
		if s, ok := d.str(item, p); ok {
			out = append(out, s)
		}
	}
	return out
}

// parseBasisPoints parses a percentage written as a plain decimal, such as
// "10" or "0.5", into hundredths of a percent.
func parseBasisPoints(s string) (int, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(whole) > 3 || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" {
		return 0, fmt.Errorf("%q: write the percentage as a plain decimal from 0 to 100, such as 10 or 0.5", s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 2 {
		return 0, fmt.Errorf("%q: at most two decimals (steps of 0.01%%)", s)
	}
	w, _ := strconv.Atoi(whole)
	f, _ := strconv.Atoi((frac + "00")[:2])
	bps := w*100 + f
	if bps > 10000 {
		return 0, fmt.Errorf("%q: over 100", s)
	}
	return bps, nil
}
