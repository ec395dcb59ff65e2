//go:build !cgo || nopcsc

package rigs

import (
	"context"
	"errors"

	"github.com/tap2join/tap2join/emulators/st25dv"
	"github.com/tap2join/tap2join/fixtures/pcscd"
	"github.com/tap2join/tap2join/rigs/nfc"
)

// pcscTransport: this binary was built without PC/SC (CGO_ENABLED=0 or
// -tags nopcsc), so rigs/nfc/pcsc (cgo, libpcsclite) is not in it.
func (r *Rig) pcscTransport(context.Context, BoardSpec, *st25dv.Tag) (nfc.Transport, PhoneHand, error) {
	return nil, nil, errors.New("nfc.transport pcsc: built without PC/SC support (needs cgo and libpcsclite-dev: " + pcscd.InstallHint + ")")
}

// pcscReaders: no PC/SC in this binary.
func pcscReaders() ([]string, error) {
	return nil, errors.New("built without PC/SC support (needs cgo and libpcsclite-dev: " + pcscd.InstallHint + ")")
}
