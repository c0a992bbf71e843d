package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/graylane/graylane/examples/bookinfo/app"
)

// readmeStep is one command of the README's walkthrough and what it must
// print.
type readmeStep struct {
	line int
	cmd  string
	// want is the output, as a pattern where … matches anything; "" when
	// the command must print nothing.
	want []string
}

// walkthroughSteps reads the first sh block after "The walkthrough" in
// README.md: a comment at the end of a command's line is its whole output
// (up to a colon that starts an explanation); comment lines indented by
// exactly three spaces below a command are its output lines; other
// comments are prose.
func walkthroughSteps(t *testing.T) []readmeStep {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	text := string(b)
	start := strings.Index(text, "The walkthrough")
	require.NotEqual(t, -1, start, "README.md has a walkthrough")
	open := strings.Index(text[start:], "```sh\n")
	require.NotEqual(t, -1, open)
	block := text[start+open+len("```sh\n"):]
	block = block[:strings.Index(block, "```")]
	firstLine := strings.Count(text[:start+open], "\n") + 2

	var steps []readmeStep
	trailing := regexp.MustCompile(`\s+#\s+(.*)$`)
	for i, line := range strings.Split(block, "\n") {
		switch {
		case strings.HasPrefix(line, "#   ") && len(line) > 4 && line[4] != ' ':
			require.NotEmpty(t, steps, "README.md:%d: output before any command", firstLine+i)
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, strings.TrimPrefix(line, "#   "))
		case strings.HasPrefix(line, "#"), strings.TrimSpace(line) == "":
		default:
			s := readmeStep{line: firstLine + i, cmd: line}
			if m := trailing.FindStringSubmatchIndex(line); m != nil && !strings.Contains(line[:m[0]], "'#") {
				s.cmd = line[:m[0]]
				want, _, _ := strings.Cut(line[m[2]:m[3]], ":")
				s.want = []string{want}
			}
			steps = append(steps, s)
		}
	}
	return steps
}

// matches reports whether out is want, line by line, … standing for
// anything within a line.
func matches(out string, want []string) bool {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if out == "" {
		lines = nil
	}
	if len(lines) != len(want) {
		return false
	}
	for i, w := range want {
		parts := strings.Split(w, "…")
		for j := range parts {
			parts[j] = regexp.QuoteMeta(parts[j])
		}
		if !regexp.MustCompile(`^\s*` + strings.Join(parts, ".*") + `\s*$`).MatchString(lines[i]) {
			return false
		}
	}
	return true
}

// TestREADMEWalkthrough runs the walkthrough's commands from README.md as
// they are written, with bash and curl, against the demo (its addresses in
// place of localhost:9080 and localhost:9091), and checks that each prints
// what its comment says. A command with an expected output is run again
// for a while if it does not match yet, as a person would after scaling: a
// new instance takes a moment to be ready.
func TestREADMEWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "grep", "wc"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "the README's commands need %s", tool)
	}
	// The metrics of a demo just started: a Telemetry of its own.
	tel, err := app.NewTelemetry(app.TelemetryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	sys := startSystem(t, app.Config{Telemetry: tel})
	gw, err := url.Parse(sys.GatewayURL())
	require.NoError(t, err)
	admin, err := url.Parse(sys.AdminURL())
	require.NoError(t, err)
	replace := strings.NewReplacer("localhost:9080", gw.Host, "localhost:9091", admin.Host, "127.0.0.1:9091", admin.Host)

	steps := walkthroughSteps(t)
	require.GreaterOrEqual(t, len(steps), 10)
	for _, s := range steps {
		cmd := replace.Replace(s.cmd)
		var out string
		deadline := time.Now().Add(defaultTestTimeout)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			var stdout, stderr bytes.Buffer
			c := exec.CommandContext(ctx, "bash", "-c", cmd)
			c.Stdout, c.Stderr = &stdout, &stderr
			runErr := c.Run()
			cancel()
			out = stdout.String()
			if matches(out, s.want) || s.want == nil || time.Now().After(deadline) {
				assert.NoError(t, runErr, "README.md:%d: %s: %s", s.line, s.cmd, stderr.String())
				break
			}
			time.Sleep(pollInterval) // nothing to await: the command is all a reader has
		}
		assert.True(t, matches(out, s.want), "README.md:%d: %s\nprints:\n%s\nthe README says:\n%s", s.line, s.cmd, out, strings.Join(s.want, "\n"))
	}
}

// TestREADMEWalkthroughParser pins how the README's comments are read.
func TestREADMEWalkthroughParser(t *testing.T) {
	assert.True(t, matches("9\n", []string{"9"}))
	assert.True(t, matches("      9\n", []string{"9"}), "wc -l pads")
	assert.False(t, matches("2\n", []string{"9"}))
	assert.True(t, matches("", nil))
	assert.False(t, matches("{\"ok\": 1}\n", nil), "a command with no comment prints nothing")
	assert.True(t, matches("X-Graylane-Route: svc=gateway;a, svc=pp;b\n", []string{"X-Graylane-Route: svc=gateway;…, svc=pp;…"}))
}
