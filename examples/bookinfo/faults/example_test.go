package faults_test

import (
	"context"
	"fmt"
	"time"

	"github.com/graylane/graylane/examples/bookinfo/faults"
)

func ExampleSwitch() {
	var s faults.Switch // off

	// Fail the next two requests with 503 after a short delay.
	if err := s.Set(faults.Fault{Delay: 10 * time.Millisecond, Abort: 503, Times: 2}); err != nil {
		panic(err)
	}
	fmt.Println(s.Fault())
	for range 3 {
		abort, _ := s.Apply(context.Background())
		fmt.Println("abort:", abort)
	}
	fmt.Println(s.Fault())
	// Output:
	// delay 10ms, abort 503, next 2
	// abort: 503
	// abort: 503
	// abort: 0
	// off
}
