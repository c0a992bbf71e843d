package productpage

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSpaced(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`{}`, `{}`},
		{`[]`, `[]`},
		{`{"a":1,"b":[1,2,{"c":null}]}`, `{"a": 1, "b": [1, 2, {"c": null}]}`},
		{`{"k:,":"v, w: x"}`, `{"k:,": "v, w: x"}`},
		{`{"q":"a \"quoted: one\", b","r":"\\","s":1}`, `{"q": "a \"quoted: one\", b", "r": "\\", "s": 1}`},
		{`"just, a: string"`, `"just, a: string"`},
	}
	for _, tt := range tests {
		got := spaced([]byte(tt.in))
		assert.Equal(t, tt.want, string(got), tt.in)
		assert.True(t, json.Valid(got))
	}
}

func FuzzSpaced(f *testing.F) {
	f.Add(`{"a":"b:c,d","e":[1,2]}`)
	f.Add(`{"q":"\"\\","r":{}}`)
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			return
		}
		var got, want any
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			return
		}
		b, err := json.Marshal(want)
		if err != nil {
			return
		}
		out := spaced(b)
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("spaced(%s) = %s: %v", b, out, err)
		}
		assert.Equal(t, want, got)
	})
}
