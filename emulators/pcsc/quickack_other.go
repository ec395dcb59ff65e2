//go:build !linux

package pcsc

import "net"

// quickAck: TCP_QUICKACK is Linux-only; elsewhere vpcd's Nagle delay stays.
func quickAck(*net.TCPConn) func() { return nil }
