//go:build unix

package lease

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// locked runs f holding an exclusive flock on <dir>/<resource>.lock. The
// kernel releases it when the process dies, so it can never go stale.
func locked(dir, resource string, f func() error) error {
	fd, err := os.OpenFile(filepath.Join(dir, resource+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return fmt.Errorf("lease: lock %s: %w", resource, err)
	}
	defer fd.Close()
	for {
		err = unix.Flock(int(fd.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lease: lock %s: %w", resource, err)
	}
	defer unix.Flock(int(fd.Fd()), unix.LOCK_UN) //nolint:errcheck // Close releases it anyway
	return f()
}

// processAlive: signal 0 probes a pid; EPERM means it exists (another user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
