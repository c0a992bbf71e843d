package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

const defaultTestTimeout = 10 * time.Second

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runCmd runs the command in-process and returns its exit status, stdout
// and stderr.
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to write the golden file")
	assert.Equal(t, string(want), got, "golden file %s (go test -update rewrites it)", path)
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{args: nil, code: exitUsage, stderr: "Usage:"},
		{args: []string{"help"}, code: exitOK, stdout: "Usage:"},
		{args: []string{"frobnicate"}, code: exitUsage, stderr: `unknown command "frobnicate"`},
		{args: []string{"lanes", "-h"}, code: exitOK, stdout: "-registry"},
		{args: []string{"explain", "--help"}, code: exitOK, stdout: "-policy"},
		{args: []string{"receipt", "-h"}, code: exitOK, stdout: "curl -D -"},
		{args: []string{"lanes", "--no-such-flag"}, code: exitUsage, stderr: "flag provided but not defined: -no-such-flag"},
		{args: []string{"lanes", "-o", "yaml", "--registry", "etcd://127.0.0.1:1"}, code: exitUsage, stderr: "want table or json"},
		{args: []string{"lanes", "--registry", ""}, code: exitUsage, stderr: "no registry"},
		{args: []string{"lanes", "--registry", "consul://x:1"}, code: exitUsage, stderr: "unknown registry"},
		{args: []string{"lanes", "--registry", "etcd://"}, code: exitUsage, stderr: "no etcd endpoint"},
		{args: []string{"lanes", "--registry", "etcd://host/path"}, code: exitUsage, stderr: "is not host:port"},
		{args: []string{"lanes", "--registry", "kubernetes"}, code: exitFailure, stderr: "no Kubernetes registry"},
		{args: []string{"lanes", "--registry", "etcd://127.0.0.1:1", "--timeout", "0s"}, code: exitUsage, stderr: "positive duration"},
		{args: []string{"lanes", "--registry", "etcd://127.0.0.1:1", "--service", "a,not valid"}, code: exitUsage, stderr: "service name"},
		{args: []string{"lanes", "--registry", "etcd://127.0.0.1:1", "extra"}, code: exitUsage, stderr: `unexpected argument "extra"`},
		{args: []string{"lanes", "--registry", "etcd://127.0.0.1:1", "--prefix", ""}, code: exitUsage, stderr: "empty key prefix"},
		{args: []string{"explain", "--registry", "etcd://127.0.0.1:1"}, code: exitUsage, stderr: "--service is required"},
		{args: []string{"explain", "--registry", "etcd://127.0.0.1:1", "--service", "a,b"}, code: exitUsage, stderr: "want one service"},
		{args: []string{"explain", "--registry", "etcd://127.0.0.1:1", "--service", "a", "--tag", "-bad-"}, code: exitUsage, stderr: "treats an invalid tag as absent"},
		{args: []string{"explain", "--registry", "etcd://127.0.0.1:1", "--service", "a", "--policy", "testdata/no-such-file.json"}, code: exitUsage, stderr: "--policy"},
		{args: []string{"explain", "--registry", "etcd://127.0.0.1:1", "--service", "a", "--policy", "testdata/bad-policy.json"}, code: exitUsage, stderr: "chain"},
		{args: []string{"receipt", "a", "b"}, code: exitUsage, stderr: "want one receipt value"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", tc.args...)
			assert.Equal(t, tc.code, code, "stderr: %s", stderr)
			assert.Contains(t, stdout, tc.stdout)
			assert.Contains(t, stderr, tc.stderr)
			assert.LessOrEqual(t, strings.Count(stdout+stderr, "Usage:"), 1, "help printed once")
		})
	}
}

// TestUnreachableRegistry: a registry that does not answer ends every
// command that reads it within the timeout, with exit status 1 and a
// message naming the registry and the timeout.
func TestUnreachableRegistry(t *testing.T) {
	for _, args := range [][]string{
		{"lanes"},
		{"lanes", "--service", "reviews"},
		{"lanes", "--watch"},
		{"lanes", "--watch", "--service", "reviews"},
		{"explain", "--service", "reviews", "--tag", "gray"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			start := time.Now()
			code, stdout, stderr := runCmd(t, "", append(args, "--registry", "etcd://127.0.0.1:1", "--timeout", "300ms")...)
			assert.Equal(t, exitFailure, code)
			assert.Empty(t, stdout)
			assert.Equal(t, "graylane "+args[0]+": registry etcd://127.0.0.1:1 did not answer within 300ms (--timeout)\n", stderr)
			assert.Less(t, time.Since(start), 5*time.Second)
		})
	}
}
