package etcd

import (
	"testing"
)

// FuzzDecode: whatever another writer put under a service's prefix, decode
// never panics, and what it accepts is a valid instance that survives
// encode and decode unchanged.
func FuzzDecode(f *testing.F) {
	const prefix = "/graylane/services/svc/"
	for _, seed := range []struct{ addr, value string }{
		{"10.0.0.1:80", `{"addr":"10.0.0.1:80","name":"n","tag":"gray","weight":3,"health":"serving","metadata":{"k":"v"}}`},
		{"10.0.0.1:80", `{"addr":"10.0.0.1:80","health":"notserving"}`},
		{"10.0.0.1:80", `{"addr":"10.0.0.1:80"}`},
		{"[fd00::1]:80", `{"addr":"[fd00::1]:80","tag":"","weight":0,"metadata":{}}`},
		{"10.0.0.1:80", `{"addr":"10.0.0.2:80"}`},
		{"10.0.0.1:80", `{"addr":"10.0.0.1:80","tag":"-x"}`},
		{"10.0.0.1:80", `{"addr":"10.0.0.1:80","weight":-1}`},
		{"10.0.0.1:80", `{"addr":"10.0.0.1:80","health":7}`},
		{"10.0.0.1:80", `null`},
		{"x", `[]`},
		{"", `{`},
	} {
		f.Add(seed.addr, []byte(seed.value))
	}
	f.Fuzz(func(t *testing.T, addr string, value []byte) {
		inst, err := decode("svc", prefix, prefix+addr, value)
		if err != nil {
			return
		}
		if err := inst.Validate(); err != nil {
			t.Fatalf("decode accepted an invalid instance: %v", err)
		}
		if inst.Service != "svc" || inst.Addr != addr {
			t.Fatalf("decode gave service %q at %q for key address %q", inst.Service, inst.Addr, addr)
		}
		raw, err := encode(inst)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := decode("svc", prefix, prefix+addr, raw)
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", inst, err)
		}
		if !inst.Equal(again) {
			t.Fatalf("round trip changed %+v into %+v", inst, again)
		}
	})
}
