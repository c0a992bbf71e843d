package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Fault is what a Switch does to each request it applies to: wait Delay,
// then, when Abort is not 0, fail with it. The zero Fault does nothing.
type Fault struct {
	// Delay is waited before the request is served or failed. The wait
	// ends early when the request's context ends.
	Delay time.Duration
	// Abort, when not 0, is the HTTP status (400 to 599) the request
	// fails with after the delay.
	Abort int
	// Times, when above 0, limits the fault to the next Times requests;
	// the switch is off after them. 0 applies the fault until it is
	// changed.
	Times int
}

// IsZero reports whether f injects nothing.
func (f Fault) IsZero() bool { return f.Delay == 0 && f.Abort == 0 }

// String describes f for people, e.g. "delay 2s, abort 503, next 3".
func (f Fault) String() string {
	if f.IsZero() {
		return "off"
	}
	s := ""
	if f.Delay > 0 {
		s = "delay " + f.Delay.String()
	}
	if f.Abort != 0 {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("abort %d", f.Abort)
	}
	if f.Times > 0 {
		s += fmt.Sprintf(", next %d", f.Times)
	}
	return s
}

// Validate reports what is wrong with f: a negative Delay or Times, or an
// Abort that is neither 0 nor an HTTP error status (400 to 599).
func (f Fault) Validate() error {
	var errs []error
	if f.Delay < 0 {
		errs = append(errs, fmt.Errorf("faults: negative delay %v", f.Delay))
	}
	if f.Abort != 0 && (f.Abort < 400 || f.Abort > 599) {
		errs = append(errs, fmt.Errorf("faults: abort status %d is not an HTTP error status (400-599)", f.Abort))
	}
	if f.Times < 0 {
		errs = append(errs, fmt.Errorf("faults: negative times %d", f.Times))
	}
	return errors.Join(errs...)
}

// Switch holds the Fault a service applies to its requests. The zero
// value is off and ready to use; a nil *Switch is always off. Its methods
// are safe for concurrent use.
type Switch struct {
	mu sync.Mutex
	f  Fault
}

// Set replaces the fault. An invalid fault (see Fault.Validate) is
// rejected with an error and the switch keeps its fault. A fault with
// Times set applies to the next Times requests that reach the switch.
func (s *Switch) Set(f Fault) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if f.IsZero() {
		f = Fault{}
	}
	s.mu.Lock()
	s.f = f
	s.mu.Unlock()
	return nil
}

// Off turns the switch off.
func (s *Switch) Off() {
	s.mu.Lock()
	s.f = Fault{}
	s.mu.Unlock()
}

// Fault returns the current fault, without using it up.
func (s *Switch) Fault() Fault {
	if s == nil {
		return Fault{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

// Take returns the fault for one request and counts the request against
// Times: the request that uses up the last of Times turns the switch off.
func (s *Switch) Take() Fault {
	if s == nil {
		return Fault{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.f
	if f.Times > 0 {
		s.f.Times--
		if s.f.Times == 0 {
			s.f = Fault{}
		}
	}
	return f
}

// Apply takes the fault for one request (see Take), waits its delay and
// returns its abort status (0 when the request is to be served). If ctx
// ends during the delay, Apply returns at once with ctx's error.
func (s *Switch) Apply(ctx context.Context) (abort int, err error) {
	f := s.Take()
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return f.Abort, nil
}
