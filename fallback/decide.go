package fallback

import (
	"errors"
	"strconv"
	"strings"

	"github.com/graylane/graylane/tag"
)

// ErrRejected is wrapped by the *Error Decide returns when the policy
// forbids falling back: the lane's mode is Strict, or the reason the lane
// cannot serve does not allow fallback (WithReasons).
var ErrRejected = errors.New("graylane: fallback forbidden by policy")

// ErrNoInstance is wrapped by the *Error Decide returns when no lane that
// may serve the hop, the base lane included, has a ready or connecting
// instance.
var ErrNoInstance = errors.New("graylane: no instance in any lane that may serve the call")

// errNilState is returned by Decide when it is given no state function.
var errNilState = errors.New("fallback: Decide needs a lane state function, got nil")

// Decision is the outcome of routing one hop.
type Decision struct {
	// Lane is the lane that serves the hop, or, when Wait is set, the lane
	// to wait for.
	Lane string
	// Reason is Matched or Untagged when the requested lane serves the hop
	// (the base lane for an untagged request); otherwise it is the reason
	// the requested lane could not serve it (NoInstances or Unavailable),
	// even when the hop went several lanes down the chain.
	Reason Reason
	// Wait means Lane is Connecting: hold the call and decide again when
	// the lanes' states change (or when the failover timeout has passed and
	// the caller reports the lane NotReady).
	Wait bool
}

// Decide routes one hop of a call to service, for a request tagged t (the
// zero Tag for an untagged request). state reports the State of one lane of
// the service; Decide calls it only for the lanes the decision needs, in
// chain order, at most once per lane.
//
// The rules:
//
//   - An untagged request goes to the base lane, and never to another one:
//     Ready serves it (Reason Untagged), Connecting waits for it, Absent and
//     NotReady fail with an *Error wrapping ErrNoInstance. A request tagged
//     with the base lane's name is treated the same way, with Reason Matched.
//   - A tagged request goes to its lane L when L is Ready (Reason Matched),
//     or waits for L when it is Connecting. Otherwise the reason is
//     NoInstances (L is Absent) or Unavailable (L is NotReady); if L's mode
//     is Strict or the reason does not allow fallback (Falls), Decide fails
//     with an *Error wrapping ErrRejected.
//   - Otherwise Decide walks Chain(L): the first lane that is Ready serves
//     the hop, the first that is Connecting is waited for, and in both cases
//     the Decision carries L's reason. A lane of the chain that cannot serve
//     either must itself fail for a reason that Falls allows, or Decide
//     fails with ErrRejected naming that lane. When the base lane at the end
//     of the chain cannot serve, Decide fails with ErrNoInstance.
//
// A State outside the defined constants counts as NotReady. Decide never
// panics and does not allocate unless it returns an error. Its errors are
// *Error values, except when state is nil, which is a programming error
// reported with a plain error.
func (s *ServicePolicy) Decide(service string, t tag.Tag, state func(lane string) State) (Decision, error) {
	s = s.orDefault()
	if state == nil {
		return Decision{}, errNilState
	}
	lane, served := t.String(), Matched
	if lane == "" {
		lane, served = s.base, Untagged
	}
	st := state(lane)
	switch st {
	case Ready:
		return Decision{Lane: lane, Reason: served}, nil
	case Connecting:
		return Decision{Lane: lane, Reason: served, Wait: true}, nil
	}
	why := missReason(st)
	mode, chain := s.mode, s.baseChain
	if lv := s.lanes[lane]; lv != nil {
		if lv.modeSet {
			mode = lv.mode
		}
		if lv.chain != nil {
			chain = lv.chain
		}
	}
	if lane == s.base {
		return Decision{}, &Error{Service: service, Tag: t.String(), Lane: lane, Reason: why, Mode: mode, Err: ErrNoInstance}
	}
	if mode == Strict || !s.Falls(why) {
		return Decision{}, &Error{Service: service, Tag: lane, Lane: lane, Reason: why, Mode: mode, Err: ErrRejected}
	}
	for i, c := range chain {
		switch st := state(c); st {
		case Ready:
			return Decision{Lane: c, Reason: why}, nil
		case Connecting:
			return Decision{Lane: c, Reason: why, Wait: true}, nil
		default:
			step := missReason(st)
			if i == len(chain)-1 {
				return Decision{}, &Error{Service: service, Tag: lane, Lane: c, Reason: step, Mode: mode, Err: ErrNoInstance}
			}
			if !s.Falls(step) {
				return Decision{}, &Error{Service: service, Tag: lane, Lane: c, Reason: step, Mode: mode, Err: ErrRejected}
			}
		}
	}
	// Unreachable with a validated policy: every chain is non-empty.
	return Decision{}, &Error{Service: service, Tag: lane, Lane: s.base, Reason: why, Mode: mode, Err: ErrNoInstance}
}

// missReason is the reason a lane in state st cannot serve.
func missReason(st State) Reason {
	if st == Absent {
		return NoInstances
	}
	return Unavailable
}

// Error is the error Decide returns when no lane may serve a hop. Use
// errors.Is with ErrRejected or ErrNoInstance to tell the two cases apart,
// and errors.As to read the details.
type Error struct {
	// Service is the service being called.
	Service string
	// Tag is the request's tag; "" for an untagged request.
	Tag string
	// Lane is the lane that could not serve: the requested lane, a lane of
	// its chain whose reason does not allow going further (ErrRejected), or
	// the base lane (ErrNoInstance).
	Lane string
	// Reason is why Lane could not serve: NoInstances or Unavailable.
	Reason Reason
	// Mode is the mode of the request's lane.
	Mode Mode
	// Err is ErrRejected or ErrNoInstance.
	Err error
}

// Error returns one sentence naming the service, the tag, the lane that
// could not serve, the reason and why the call went no further, such as
//
//	graylane: service "reviews", tag "gray": lane "gray" has no instances (noinstances) and strict mode forbids fallback
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("graylane: service ")
	b.WriteString(strconv.Quote(e.Service))
	if e.Tag == "" {
		b.WriteString(", untagged request: ")
	} else {
		b.WriteString(", tag ")
		b.WriteString(strconv.Quote(e.Tag))
		b.WriteString(": ")
	}
	switch {
	case errors.Is(e.Err, ErrNoInstance):
		switch e.Reason {
		case NoInstances:
			b.WriteString("no instances")
		case Unavailable:
			b.WriteString("no ready instance")
		default:
			b.WriteString("no instance to serve")
		}
		b.WriteString(" in lane ")
		b.WriteString(strconv.Quote(e.Lane))
		b.WriteString(" (")
		b.WriteString(e.Reason.String())
		switch {
		case e.Tag == "":
			b.WriteString("), and untagged requests never fall back")
		case e.Tag == e.Lane:
			b.WriteString("), the base lane, which never falls back")
		default:
			b.WriteString("), the end of the fallback chain")
		}
	default:
		if e.Tag != "" && e.Tag != e.Lane {
			b.WriteString("fallback ")
		}
		b.WriteString("lane ")
		b.WriteString(strconv.Quote(e.Lane))
		switch e.Reason {
		case NoInstances:
			b.WriteString(" has no instances")
		case Unavailable:
			b.WriteString(" has no ready instance")
		default:
			b.WriteString(" cannot serve")
		}
		b.WriteString(" (")
		b.WriteString(e.Reason.String())
		b.WriteString(")")
		switch {
		case !errors.Is(e.Err, ErrRejected):
			if e.Err != nil {
				b.WriteString(": ")
				b.WriteString(e.Err.Error())
			}
		case e.Mode == Strict:
			b.WriteString(" and strict mode forbids fallback")
		default:
			b.WriteString(" and fallback on ")
			b.WriteString(e.Reason.String())
			b.WriteString(" is disabled")
		}
	}
	return b.String()
}

// Unwrap returns e.Err, so that errors.Is(err, ErrRejected) and
// errors.Is(err, ErrNoInstance) work.
func (e *Error) Unwrap() error { return e.Err }
