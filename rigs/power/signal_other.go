//go:build !unix

package power

import "os"

var interruptSignal = os.Kill
