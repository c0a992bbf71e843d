package ingress

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// FieldError is one problem found in a rule set: a syntax error, an
// unknown or repeated field, a value of the wrong type or an invalid one.
// Parse, Load, Watch and Compile return every problem they find, each a
// *FieldError, joined with errors.Join; use errors.As to get the first.
type FieldError struct {
	// File is the name the rule set was read from; "" for Compile.
	File string
	// Line is the line of the field in File, from 1; 0 when unknown.
	Line int
	// Path names the field, such as "rules[2].match.header.x-user.regex";
	// "" for a problem with the file as a whole.
	Path string
	// Msg says what is wrong.
	Msg string
}

// Error returns "file:line: path: message", leaving out the parts that are
// unknown, such as
//
//	rules.yaml:12: rules[2].match.header.x-user.regex: missing closing ): `(gray`
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// maxErrors bounds the problems reported for one rule set.
const maxErrors = 20

// errorList collects FieldErrors, knowing the file and the line of each
// field path seen while decoding.
type errorList struct {
	file string
	pos  map[string]int // field path -> line
	errs []*FieldError
	skip []string // paths already reported: problems of related paths are consequences
	// Size of the regular expressions compiled so far (see MaxRegexSize).
	regexSize int
}

func (l *errorList) add(line int, path, format string, args ...any) {
	for _, s := range l.skip {
		if related(path, s) {
			return
		}
	}
	if line == 0 {
		line = l.lineOf(path)
	}
	l.errs = append(l.errs, &FieldError{File: l.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of path, or of its closest parent with one.
func (l *errorList) lineOf(path string) int {
	for path != "" {
		if n, ok := l.pos[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// err returns the collected problems, sorted by line, or nil.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool { return l.errs[i].Line < l.errs[j].Line })
	errs := make([]error, 0, min(len(l.errs), maxErrors+1))
	for i, e := range l.errs {
		if i == maxErrors {
			errs = append(errs, &FieldError{File: l.file, Msg: fmt.Sprintf("%d more problems not shown", len(l.errs)-maxErrors)})
			break
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// related reports whether one of the paths a and b is the other or inside
// it.
func related(a, b string) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	return a == b || strings.HasPrefix(a, b) && (a[len(b)] == '.' || a[len(b)] == '[')
}

// joinPath appends a field name to a path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a list index to a path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
