// Package rigs describes a test bench in a rig file (YAML) and brings it up:
// which boards are on the bench, real or emulated, how the phone reaches their
// tags (an NFC transport), which network server checks the joins, and whether
// emulated parts run on instant or realistic time.
//
// A suite asks for "the rig" and gets drivers (rigs/nfc, rigs/at, rigs/phone,
// fixtures/lns) that are the same whatever the file says; only this package
// knows whether a board is an emulator or hardware. What a bench can do beyond
// the flow — lift the phone, halt an MCU, cut the gateways — is a capability
// (capabilities.go) a part may offer; a spec asks for it and skips, with the
// reason, on a rig that lacks it.
//
// One file per part of a bench:
//
//	rigfile.go, rigfile_hardware.go   the rig file: schema, defaults, validation (real benches: wiring, leases)
//	rig.go                            Up, reading top to bottom: network, air and gateways, backend, boards; Close
//	network.go                        the network server: embedded, in containers or external; its client
//	gateways.go                       the emulated air and gateways
//	provisioning.go                   the provisioning backend: embedded or external; re-issuing keys
//	emulatedboard.go                  an emulated board: tag twin + MCU twin on one I2C bus, its pty console
//	realboard.go                      a real board: lease, serial console, firmware version, PC/SC reader
//	console.go, nfctransport*.go      the AT console and the phone's NFC transport, for both kinds
//	capabilities.go                   what a bench part can do besides the flow (fault injection)
//	othernetwork.go                   a second network on the same air, to move a device to
//	keyleak.go                        every key issued in this process, to prove logs and reports hold none
package rigs
