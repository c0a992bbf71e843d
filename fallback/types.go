package fallback

import (
	"fmt"
	"strconv"
)

// Mode says whether a lane that cannot serve a hop may hand it to another
// lane. The zero value is Loose.
type Mode uint8

const (
	// Loose falls back along the lane's chain, ending at the base lane.
	Loose Mode = iota
	// Strict never falls back: the hop fails with an *Error wrapping
	// ErrRejected.
	Strict
)

var modeNames = [...]string{Loose: "loose", Strict: "strict"}

func (m Mode) valid() bool { return int(m) < len(modeNames) }

// String returns "loose" or "strict", or "Mode(N)" for a value outside the
// defined constants.
func (m Mode) String() string {
	if m.valid() {
		return modeNames[m]
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// MarshalText implements encoding.TextMarshaler. It fails for a value
// outside the defined constants.
func (m Mode) MarshalText() ([]byte, error) {
	if !m.valid() {
		return nil, fmt.Errorf("fallback: unknown mode %d; allowed are %s", uint8(m), quoteList(modeNames[:]))
	}
	return []byte(modeNames[m]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts the names
// String returns for the defined constants ("loose", "strict"), exactly as
// spelled; anything else is an error naming the input and the allowed names.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := parseMode(string(b))
	if err != nil {
		return fmt.Errorf("fallback: %w", err)
	}
	*m = v
	return nil
}

func parseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if s == n {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q; allowed are %s", clip(s), quoteList(modeNames[:]))
}

// Reason says why a lane did, or did not, serve a hop.
type Reason uint8

const (
	// Matched: the requested lane serves the hop.
	Matched Reason = iota
	// Untagged: the request has no tag; the base lane serves it.
	Untagged
	// NoInstances: the requested lane has no registered instance of the
	// service.
	NoInstances
	// Unavailable: the requested lane has instances of the service but none
	// is ready.
	Unavailable
)

var reasonNames = [...]string{
	Matched:     "matched",
	Untagged:    "untagged",
	NoInstances: "noinstances",
	Unavailable: "unavailable",
}

func (r Reason) valid() bool { return int(r) < len(reasonNames) }

// String returns "matched", "untagged", "noinstances" or "unavailable", or
// "Reason(N)" for a value outside the defined constants.
func (r Reason) String() string {
	if r.valid() {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// FallbackReasons are the reasons for leaving the requested lane, in the
// order they are listed everywhere (policy JSON, docs, telemetry): the
// default of WithReasons. Treat it as read-only.
var FallbackReasons = []Reason{NoInstances, Unavailable}

// IsFallback reports whether r is a reason for leaving the requested lane:
// true for NoInstances and Unavailable, false otherwise.
func (r Reason) IsFallback() bool {
	for _, f := range FallbackReasons {
		if r == f {
			return true
		}
	}
	return false
}

// fallbackReasonList names the fallback reasons for error messages:
// "noinstances" and "unavailable".
func fallbackReasonList() string {
	names := make([]string, len(FallbackReasons))
	for i, r := range FallbackReasons {
		names[i] = r.String()
	}
	return quoteList(names)
}

// MarshalText implements encoding.TextMarshaler. It fails for a value
// outside the defined constants.
func (r Reason) MarshalText() ([]byte, error) {
	if !r.valid() {
		return nil, fmt.Errorf("fallback: unknown reason %d; allowed are %s", uint8(r), quoteList(reasonNames[:]))
	}
	return []byte(reasonNames[r]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts the names
// String returns for the defined constants, exactly as spelled; anything else
// is an error naming the input and the allowed names.
func (r *Reason) UnmarshalText(b []byte) error {
	v, err := parseReason(string(b))
	if err != nil {
		return fmt.Errorf("fallback: %w", err)
	}
	*r = v
	return nil
}

func parseReason(s string) (Reason, error) {
	for i, n := range reasonNames {
		if s == n {
			return Reason(i), nil
		}
	}
	return 0, fmt.Errorf("unknown reason %q; allowed are %s", clip(s), quoteList(reasonNames[:]))
}

// State is what the caller knows about one lane of the service it is about
// to call. Decide asks for it lane by lane, through a callback, so that the
// caller computes only what the decision needs.
type State uint8

const (
	// Absent: no instance of the service is registered in the lane.
	Absent State = iota
	// NotReady: instances exist, none is ready, and none is worth waiting
	// for.
	NotReady
	// Connecting: instances exist and none is ready yet, but one is
	// connecting and the caller is still willing to wait for it. The caller
	// applies the failover timeout (ServicePolicy.FailoverTimeout): once it
	// has passed, the caller reports NotReady instead.
	Connecting
	// Ready: at least one instance can take the call.
	Ready
)

var stateNames = [...]string{
	Absent:     "absent",
	NotReady:   "notready",
	Connecting: "connecting",
	Ready:      "ready",
}

// String returns "absent", "notready", "connecting" or "ready", or
// "State(N)" for a value outside the defined constants.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

func quoteList(names []string) string {
	s := ""
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			s += " and "
		default:
			s += ", "
		}
		s += strconv.Quote(n)
	}
	return s
}
