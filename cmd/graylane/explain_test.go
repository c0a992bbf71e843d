package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExplain(t *testing.T) {
	f := newFleet(t)
	f.bookinfo()
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		golden string
	}{
		{"matched", []string{"--service", "reviews", "--tag", "gray"}, exitOK, "explain-matched.golden"},
		{"untagged", []string{"--service", "ratings"}, exitOK, "explain-untagged.golden"},
		{"noinstances", []string{"--service", "ratings", "--tag", "gray"}, exitOK, "explain-noinstances.golden"},
		{"unavailable", []string{"--service", "reviews", "--tag", "v3"}, exitOK, "explain-unavailable.golden"},
		{"chain", []string{"--service", "reviews", "--tag", "dev-alice", "--policy", "testdata/chain-policy.json"}, exitOK, "explain-chain.golden"},
		{"strict", []string{"--service", "details", "--tag", "gray", "--policy", "testdata/strict-policy.json"}, exitRefused, "explain-strict.golden"},
		{"unknown service", []string{"--service", "nothing", "--tag", "gray"}, exitRefused, "explain-unknown-service.golden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", append([]string{"explain", "--registry", f.url}, tc.args...)...)
			assert.Equal(t, tc.code, code, stderr)
			assert.Empty(t, stderr)
			golden(t, tc.golden, stdout)
		})
	}
}

func TestExplainJSON(t *testing.T) {
	f := newFleet(t)
	f.bookinfo()
	code, stdout, stderr := runCmd(t, "", "explain", "--registry", f.url, "--service", "reviews", "--tag", "v3", "-o", "json")
	require.Equal(t, exitOK, code, stderr)
	var v explainJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &v))
	assert.Equal(t, "reviews", v.Service)
	assert.Equal(t, "v3", v.Tag)
	assert.Equal(t, "prod", v.Lane)
	assert.Equal(t, "unavailable", v.Reason)
	assert.Equal(t, []stepJSON{{"v3", "notready"}, {"prod", "ready"}}, v.Walk)
	require.Len(t, v.Instances, 1)
	assert.Equal(t, "reviews-v1-0", v.Instances[0].Name)
	assert.Len(t, v.Lanes, 3)
	assert.Empty(t, v.Error)

	code, stdout, _ = runCmd(t, "", "explain", "--registry", f.url, "--service", "details", "--tag", "gray", "--policy", "testdata/strict-policy.json", "-o", "json")
	require.Equal(t, exitRefused, code)
	v = explainJSON{}
	require.NoError(t, json.Unmarshal([]byte(stdout), &v))
	assert.Empty(t, v.Lane)
	assert.Equal(t, "noinstances", v.Reason)
	assert.Contains(t, v.Error, "strict mode forbids fallback")
	assert.Empty(t, v.Instances)
}
