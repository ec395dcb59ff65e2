//go:build !linux

package vpcd

import "net"

// quickAck: TCP_QUICKACK is Linux-only; elsewhere vpcd's Nagle delay stays.
func quickAck(*net.TCPConn) func() { return nil }
