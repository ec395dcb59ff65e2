package timing

import (
	"time"

	"golang.org/x/sys/unix"
)

// fineSleep blocks the calling thread for d with nanosleep(2): accurate to a
// few µs, where a Go timer is not (see fineWindow). Only the ≤ 1.5 ms tail
// of a wait comes here, so at most that long an OS thread is held.
func fineSleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for {
		var left unix.Timespec
		if err := unix.Nanosleep(&ts, &left); err != unix.EINTR {
			return
		}
		ts = left // interrupted by a signal (Go's preemption): sleep the rest
	}
}
