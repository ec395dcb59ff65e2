package nfc

import (
	"context"
	"fmt"
	"strings"
)

// Dynamic register pointer of MB_CTRL_Dyn (DS Table 13).
const ptrMBCtrl = 0x0D

// MBCtrl is MB_CTRL_Dyn decoded (DS Table 18).
type MBCtrl struct {
	Enabled     bool // b0 MB_EN: fast transfer mode on
	HostPut     bool // b1 HOST_PUT_MSG: a message from the I2C host is pending
	RFPut       bool // b2 RF_PUT_MSG: a message from RF is pending
	HostMiss    bool // b4 HOST_MISS_MSG: the host did not read the RF message in time
	RFMiss      bool // b5 RF_MISS_MSG: RF did not read the host message in time
	HostCurrent bool // b6 HOST_CURRENT_MSG: the buffer holds a host message
	RFCurrent   bool // b7 RF_CURRENT_MSG: the buffer holds an RF message
	Raw         byte
}

// ParseMBCtrl decodes a raw MB_CTRL_Dyn value.
func ParseMBCtrl(v byte) MBCtrl {
	return MBCtrl{
		Enabled: v&0x01 != 0, HostPut: v&0x02 != 0, RFPut: v&0x04 != 0,
		HostMiss: v&0x10 != 0, RFMiss: v&0x20 != 0, HostCurrent: v&0x40 != 0, RFCurrent: v&0x80 != 0,
		Raw: v,
	}
}

// Free reports whether a new message may be written (FTM on, nothing pending).
func (m MBCtrl) Free() bool { return m.Enabled && !m.HostPut && !m.RFPut }

func (m MBCtrl) String() string {
	var s []string
	for _, b := range []struct {
		on   bool
		name string
	}{{m.Enabled, "MB_EN"}, {m.HostPut, "HOST_PUT"}, {m.RFPut, "RF_PUT"}, {m.HostMiss, "HOST_MISS"},
		{m.RFMiss, "RF_MISS"}, {m.HostCurrent, "HOST_CURRENT"}, {m.RFCurrent, "RF_CURRENT"}} {
		if b.on {
			s = append(s, b.name)
		}
	}
	return fmt.Sprintf("%02Xh[%s]", m.Raw, strings.Join(s, "|"))
}

// MailboxStatus reads MB_CTRL_Dyn (Read Dynamic Configuration 0Dh).
func (d *ST25DV) MailboxStatus(ctx context.Context) (MBCtrl, error) {
	v, err := d.ReadDynConfig(ctx, ptrMBCtrl)
	if err != nil {
		return MBCtrl{}, fmt.Errorf("st25dv: mailbox status: %w", err)
	}
	return ParseMBCtrl(v), nil
}

// SetMailbox writes MB_EN (Write Dynamic Configuration 0Dh). Enabling needs
// FTM.MB_MODE = 1 (a static register, WriteConfig 0Dh with the configuration
// session) and VCC on the tag (DS §5.1.2; ST's answer in the ST community
// thread "How to Enable the Mailbox and Perform Write/Read on ST25DV via RF
// (ISO15693)").
func (d *ST25DV) SetMailbox(ctx context.Context, on bool) error {
	var v byte
	if on {
		v = 1
	}
	if err := d.WriteDynConfig(ctx, ptrMBCtrl, v); err != nil {
		return fmt.Errorf("st25dv: set mailbox %v: %w", on, err)
	}
	return nil
}

// WriteMessage puts msg (1..256 bytes) into the mailbox (AAh: MSGLength =
// n−1, then the bytes). The tag refuses (ISOError 0Fh) while the mailbox is
// off or holds an unread message. Note that phones cap a transceive at 253
// bytes, so an addressed Write Message from a phone carries at most 241.
func (d *ST25DV) WriteMessage(ctx context.Context, msg []byte) error {
	if len(msg) < 1 || len(msg) > MaxMessage {
		return fmt.Errorf("st25dv: write message: length %d out of range 1..%d", len(msg), MaxMessage)
	}
	if _, err := d.do(ctx, cmdWriteMsg, nil, 0, append([]byte{byte(len(msg) - 1)}, msg...)...); err != nil {
		return fmt.Errorf("st25dv: write message: %w", err)
	}
	return nil
}

// MessageLength returns the length of the message in the mailbox (Read
// Message Length ABh returns MB_LEN_Dyn = length − 1, DS §7.6.32).
func (d *ST25DV) MessageLength(ctx context.Context) (int, error) {
	p, err := d.do(ctx, cmdReadMsgLen, nil, 1)
	if err != nil {
		return 0, fmt.Errorf("st25dv: read message length: %w", err)
	}
	return int(p[0]) + 1, nil
}

// ReadMessage reads the length, then the whole message: one Read Message
// with pointer 00h / count 00h ("whole message", DS §7.6.33; ST community
// "How to receive more than 255 bytes of data via the fast transfer mailbox
// using the Android ST25 SDK"), or chunks
// of WithMaxMessageChunk bytes. Reading the last byte of a host message
// releases it on the tag (HOST_PUT_MSG cleared, RF_GET_MSG raised).
func (d *ST25DV) ReadMessage(ctx context.Context) ([]byte, error) {
	n, err := d.MessageLength(ctx)
	if err != nil {
		return nil, fmt.Errorf("st25dv: read message: %w", err)
	}
	if n <= d.maxMsgChunk {
		p, err := d.do(ctx, cmdReadMsg, nil, n, 0x00, 0x00)
		if err != nil {
			return nil, fmt.Errorf("st25dv: read message: %w", err)
		}
		return p, nil
	}
	out := make([]byte, 0, n)
	for off := 0; off < n; {
		// maxMsgChunk ≥ 2 and n > maxMsgChunk, so the first chunk never is
		// the ambiguous pointer 0 / count 1 (that encoding means "whole").
		size := min(d.maxMsgChunk, n-off)
		p, err := d.do(ctx, cmdReadMsg, nil, size, byte(off), byte(size-1))
		if err != nil {
			return nil, fmt.Errorf("st25dv: read message bytes %d..%d: %w", off, off+size-1, err)
		}
		out = append(out, p...)
		off += size
	}
	return out, nil
}
