package power

import "syscall"

// interruptSignal ends gpioset --mode=signal (it waits for SIGINT/SIGTERM).
var interruptSignal = syscall.SIGTERM

// holdAttr: the kernel ends the line holder when this process dies, so a
// killed run leaves no gpioset holding a relay.
func holdAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} }
