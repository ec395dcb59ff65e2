//go:build !unix

package power

import (
	"os"
	"syscall"
)

var interruptSignal = os.Kill

func holdAttr() *syscall.SysProcAttr { return nil }
