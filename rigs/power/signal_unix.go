//go:build unix && !linux

package power

import "syscall"

// interruptSignal ends gpioset --mode=signal (it waits for SIGINT/SIGTERM).
var interruptSignal = syscall.SIGTERM

func holdAttr() *syscall.SysProcAttr { return nil }
