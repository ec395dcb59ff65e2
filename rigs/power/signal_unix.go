//go:build unix

package power

import "syscall"

// interruptSignal ends gpioset --mode=signal (it waits for SIGINT/SIGTERM).
var interruptSignal = syscall.SIGTERM
