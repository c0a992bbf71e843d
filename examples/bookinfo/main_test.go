package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHelpDocumentsFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, 0, run([]string{"-h"}, &out, &errOut))
	for _, flag := range []string{"-gateway-addr", "-admin-addr", "-replicas", "-strict", "-log-level", "-rules", "-trust", "-gray-percent", "-trace", "-otlp-endpoint", "-admin-host"} {
		assert.Contains(t, errOut.String(), flag)
	}
	assert.Contains(t, errOut.String(), "reviews-v2 (gray, 0)")

	errOut.Reset()
	assert.Equal(t, 0, runLoad([]string{"-h"}, &out, &errOut))
	for _, flag := range []string{"-rate", "-duration", "-tagged", "-concurrency", "-url"} {
		assert.Contains(t, errOut.String(), flag)
	}
}

func TestBadFlags(t *testing.T) {
	tests := map[string][]string{
		"unknown deployment": {"-replicas", "reviews-v9=1"},
		"bad count":          {"-replicas", "reviews-v2=-1"},
		"base lane strict":   {"-strict", "prod"},
		"bad lane":           {"-strict", "gr ay"},
		"bad level":          {"-log-level", "loud"},
		"bad percent":        {"-gray-percent", "120"},
		"bad trace":          {"-trace", "file"},
		"two exporters":      {"-trace", "stdout", "-otlp-endpoint", "127.0.0.1:4317"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			assert.Equal(t, 2, run(args, &out, &errOut))
			assert.NotEmpty(t, strings.TrimSpace(errOut.String()))
		})
	}
}
