//go:build !linux

package timing

import (
	"runtime"
	"time"
)

// fineSleep waits d yielding the processor on the monotonic clock: without
// nanosleep(2) this is the way below a Go timer's granularity.
func fineSleep(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		runtime.Gosched()
	}
}
