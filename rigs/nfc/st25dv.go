package nfc

import (
	"context"
	"errors"
	"fmt"
)

// Request flags (DS Table 96..98).
const (
	flagHighRate  = 0x02
	flagInventory = 0x04
	flagAddress   = 0x20 // non-inventory: Address_flag; inventory: Nb_slots = 1
	mfgST         = 0x02
	blockSize     = 4
	// MaxMessage is the mailbox size (DS §5.1).
	MaxMessage = 256
)

// ST25DV is a reader-side driver for an ST25DV64KC. It is not safe for
// concurrent use (one reader talks to one tag at a time).
type ST25DV struct {
	t             Transport
	addressed     bool
	fast          bool
	highRate      bool
	uid           [8]byte // MSB first
	haveUID       bool
	maxReadBlocks int
	maxMsgChunk   int
	multiWrite    bool
}

// Option configures an ST25DV driver.
type Option func(*ST25DV)

// WithAddressed selects addressed (default) or non-addressed requests.
// Phones prefer addressed mode (some stacks mishandle non-addressed
// commands, per a widely cited Stack Overflow answer; which phones is
// UNCONFIRMED); the UID comes from Inventory
// unless WithUID gives it.
func WithAddressed(on bool) Option { return func(d *ST25DV) { d.addressed = on } }

// WithUID sets the tag UID (MSB first) so addressed mode needs no Inventory.
func WithUID(uid [8]byte) Option { return func(d *ST25DV) { d.uid, d.haveUID = uid, true } }

// WithFastCommands uses the ST fast commands (C0h..CEh: response at 53 kbit/s)
// where they exist. Off by default: phones cannot receive them (ST community
// "ST25DV64KC - Fast Read Single Block").
func WithFastCommands(on bool) Option { return func(d *ST25DV) { d.fast = on } }

// WithHighDataRate selects the tag's response data rate: high (26.48 kbit/s,
// default, what NFC Forum readers and Android use) or low (6.62 kbit/s).
func WithHighDataRate(on bool) Option { return func(d *ST25DV) { d.highRate = on } }

// WithMaxReadBlocks caps blocks per Read Multiple Blocks request (default
// 32 = 128 bytes, like Android's rw_i93; phones cap a transceive at 253 bytes).
func WithMaxReadBlocks(n int) Option {
	return func(d *ST25DV) { d.maxReadBlocks = min(max(n, 1), 256) }
}

// WithMaxMessageChunk caps bytes per Read Message request (2..256; default
// 256, the whole mailbox in one Read Message 00h/00h).
func WithMaxMessageChunk(n int) Option {
	return func(d *ST25DV) { d.maxMsgChunk = min(max(n, 2), MaxMessage) }
}

// WithMultiBlockWrite writes with Write Multiple Blocks (up to 4 blocks,
// ~19.7 ms instead of 4 × ~11.6 ms) instead of Write Single Block. Groups
// are 4-block aligned, so they never straddle an area border (areas are
// multiples of 8 blocks, DS §4.2.1).
func WithMultiBlockWrite(on bool) Option { return func(d *ST25DV) { d.multiWrite = on } }

// NewST25DV returns a driver talking over t.
func NewST25DV(t Transport, opts ...Option) *ST25DV {
	d := &ST25DV{t: t, addressed: true, highRate: true, maxReadBlocks: 32, maxMsgChunk: MaxMessage}
	for _, o := range opts {
		o(d)
	}
	return d
}

// UID returns the UID (MSB first) once known.
func (d *ST25DV) UID() ([8]byte, bool) { return d.uid, d.haveUID }

// Close closes the transport.
func (d *ST25DV) Close() error { return d.t.Close() }

func (d *ST25DV) flags() byte {
	var f byte
	if d.highRate {
		f |= flagHighRate
	}
	if d.addressed {
		f |= flagAddress
	}
	return f
}

// cmd pairs a normal command code with its fast twin (0 = none).
type cmd struct {
	code, fast byte
	custom     bool // ST custom command: IC mfg code 02h follows the code
}

var (
	cmdReadSingle     = cmd{0x20, 0xC0, false}
	cmdExtReadSingle  = cmd{0x30, 0xC4, false}
	cmdReadMulti      = cmd{0x23, 0xC3, false}
	cmdExtReadMulti   = cmd{0x33, 0xC5, false}
	cmdWriteSingle    = cmd{0x21, 0, false}
	cmdExtWriteSingle = cmd{0x31, 0, false}
	cmdWriteMulti     = cmd{0x24, 0, false}
	cmdExtWriteMulti  = cmd{0x34, 0, false}
	cmdExtGetSysInfo  = cmd{0x3B, 0, false}
	cmdReadConfig     = cmd{0xA0, 0, true}
	cmdWriteConfig    = cmd{0xA1, 0, true}
	cmdWriteMsg       = cmd{0xAA, 0xCA, true}
	cmdReadMsgLen     = cmd{0xAB, 0xCB, true}
	cmdReadMsg        = cmd{0xAC, 0xCC, true}
	cmdReadDyn        = cmd{0xAD, 0xCD, true}
	cmdWriteDyn       = cmd{0xAE, 0xCE, true}
	cmdWritePwd       = cmd{0xB1, 0, true}
	cmdPresentPwd     = cmd{0xB3, 0, true}
)

// frame builds flags, code, [02h], [pre], [UID LSB first], params — the
// field order of RFAL's rfalNfcvPollerTransceiveReq (the mfg code or the
// Ext Get System Info request field sits before the UID).
func (d *ST25DV) frame(c cmd, pre []byte, params ...byte) []byte {
	code := c.code
	custom := c.custom
	if d.fast && c.fast != 0 {
		code, custom = c.fast, true // fast commands are all custom (DS Table 103)
	}
	f := []byte{d.flags(), code}
	if custom {
		f = append(f, mfgST)
	}
	f = append(f, pre...)
	if d.addressed {
		for i := 7; i >= 0; i-- {
			f = append(f, d.uid[i])
		}
	}
	return append(f, params...)
}

// exchange sends a frame and returns the payload after the flags byte.
func (d *ST25DV) exchange(ctx context.Context, frame []byte) ([]byte, error) {
	resp, err := d.t.Transceive(ctx, frame)
	if err != nil {
		return nil, err
	}
	if len(resp) == 0 {
		return nil, errors.New("empty response")
	}
	if resp[0]&0x01 != 0 {
		if len(resp) < 2 {
			return nil, fmt.Errorf("error response without code: % X", resp)
		}
		return nil, &ISOError{Code: resp[1]}
	}
	return resp[1:], nil
}

// do ensures the UID (addressed mode), sends, and checks the payload length
// (want < 0: any).
func (d *ST25DV) do(ctx context.Context, c cmd, pre []byte, want int, params ...byte) ([]byte, error) {
	if d.addressed && !d.haveUID {
		if _, _, err := d.Inventory(ctx); err != nil {
			return nil, err
		}
	}
	p, err := d.exchange(ctx, d.frame(c, pre, params...))
	if err != nil {
		return nil, err
	}
	if want >= 0 && len(p) != want {
		return nil, fmt.Errorf("response of %d bytes, want %d: % X", len(p), want, p)
	}
	return p, nil
}

// Inventory runs a 1-slot Inventory without mask (26 01 00, what Android
// sends) and remembers the UID for addressed mode.
func (d *ST25DV) Inventory(ctx context.Context) (uid [8]byte, dsfid byte, err error) {
	f := byte(flagInventory | flagAddress) // 1 slot
	if d.highRate {
		f |= flagHighRate
	}
	p, err := d.exchange(ctx, []byte{f, 0x01, 0x00})
	if err != nil {
		return uid, 0, fmt.Errorf("st25dv: inventory: %w", err)
	}
	if len(p) != 9 {
		return uid, 0, fmt.Errorf("st25dv: inventory: response of %d bytes, want 9", len(p))
	}
	for i := 0; i < 8; i++ {
		uid[i] = p[8-i]
	}
	d.uid, d.haveUID = uid, true
	return uid, p[0], nil
}

// SystemInfo describes the tag (Extended Get System Info, DS Table 163..174).
type SystemInfo struct {
	UID       [8]byte // MSB first
	DSFID     byte
	AFI       byte
	Blocks    int // number of blocks (2048 on the 64KC)
	BlockSize int // bytes per block (4)
	ICRef     byte
}

// MemoryBytes is Blocks × BlockSize.
func (s SystemInfo) MemoryBytes() int { return s.Blocks * s.BlockSize }

// SystemInfo reads the system information with Extended Get System Info
// (3Bh, request field 0Fh: DSFID, AFI, memory size, IC ref). The plain Get
// System Info of the 64KC has no memory size field (DS Table 160), which is
// why Android also switches to 3Bh for ST tags (AOSP system/nfc rw_i93.cc
// rw_i93_process_sys_info).
func (d *ST25DV) SystemInfo(ctx context.Context) (SystemInfo, error) {
	var si SystemInfo
	p, err := d.do(ctx, cmdExtGetSysInfo, []byte{0x0F}, -1)
	if err != nil {
		return si, fmt.Errorf("st25dv: system info: %w", err)
	}
	if len(p) < 9 {
		return si, fmt.Errorf("st25dv: system info: response of %d bytes", len(p))
	}
	info := p[0]
	for i := 0; i < 8; i++ {
		si.UID[i] = p[8-i]
	}
	rest := p[9:]
	take := func(n int) ([]byte, bool) {
		if len(rest) < n {
			return nil, false
		}
		b := rest[:n]
		rest = rest[n:]
		return b, true
	}
	short := fmt.Errorf("st25dv: system info: truncated response % X", p)
	if info&0x01 != 0 {
		b, ok := take(1)
		if !ok {
			return si, short
		}
		si.DSFID = b[0]
	}
	if info&0x02 != 0 {
		b, ok := take(1)
		if !ok {
			return si, short
		}
		si.AFI = b[0]
	}
	if info&0x04 != 0 {
		b, ok := take(3)
		if !ok {
			return si, short
		}
		si.Blocks = (int(b[0]) | int(b[1])<<8) + 1
		si.BlockSize = int(b[2]&0x1F) + 1
	}
	if info&0x08 != 0 {
		b, ok := take(1)
		if !ok {
			return si, short
		}
		si.ICRef = b[0]
	}
	return si, nil
}

func checkRange(first, count int) error {
	if first < 0 || count < 1 || first+count > 0x10000 {
		return fmt.Errorf("blocks %d+%d out of range", first, count)
	}
	return nil
}

// ReadBlocks reads count blocks from block first. Extended commands (16-bit
// block numbers) are used when a block above FFh is involved (DS §7.6.2);
// reads are split into requests of at most WithMaxReadBlocks blocks. A tag
// may return fewer blocks than asked at an area border (KC behaviour, DS
// §4.2.1); the rest is then requested separately and its error reported.
func (d *ST25DV) ReadBlocks(ctx context.Context, first, count int) ([]byte, error) {
	if err := checkRange(first, count); err != nil {
		return nil, fmt.Errorf("st25dv: read blocks: %w", err)
	}
	ext := first+count-1 > 0xFF
	out := make([]byte, 0, count*blockSize)
	for b := first; b < first+count; {
		n := min(d.maxReadBlocks, first+count-b)
		var p []byte
		var err error
		switch {
		case n == 1 && ext:
			p, err = d.do(ctx, cmdExtReadSingle, nil, blockSize, byte(b), byte(b>>8))
		case n == 1:
			p, err = d.do(ctx, cmdReadSingle, nil, blockSize, byte(b))
		case ext:
			p, err = d.do(ctx, cmdExtReadMulti, nil, -1, byte(b), byte(b>>8), byte(n-1), byte((n-1)>>8))
		default:
			p, err = d.do(ctx, cmdReadMulti, nil, -1, byte(b), byte(n-1))
		}
		if err != nil {
			return nil, fmt.Errorf("st25dv: read blocks %d..%d: %w", b, b+n-1, err)
		}
		if len(p) == 0 || len(p)%blockSize != 0 || len(p) > n*blockSize {
			return nil, fmt.Errorf("st25dv: read blocks %d..%d: %d data bytes", b, b+n-1, len(p))
		}
		out = append(out, p...)
		b += len(p) / blockSize
	}
	return out, nil
}

// WriteBlocks writes data (a whole number of 4-byte blocks) from block first.
func (d *ST25DV) WriteBlocks(ctx context.Context, first int, data []byte) error {
	if len(data) == 0 || len(data)%blockSize != 0 {
		return fmt.Errorf("st25dv: write blocks: %d bytes is not a whole number of %d-byte blocks", len(data), blockSize)
	}
	count := len(data) / blockSize
	if err := checkRange(first, count); err != nil {
		return fmt.Errorf("st25dv: write blocks: %w", err)
	}
	ext := first+count-1 > 0xFF
	for b := first; b < first+count; {
		n := 1
		if d.multiWrite {
			n = min(4-b%4, first+count-b)
		}
		chunk := data[(b-first)*blockSize : (b-first+n)*blockSize]
		var c cmd
		var params []byte
		switch {
		case n == 1 && ext:
			c, params = cmdExtWriteSingle, []byte{byte(b), byte(b >> 8)}
		case n == 1:
			c, params = cmdWriteSingle, []byte{byte(b)}
		case ext:
			c, params = cmdExtWriteMulti, []byte{byte(b), byte(b >> 8), byte(n - 1), 0}
		default:
			c, params = cmdWriteMulti, []byte{byte(b), byte(n - 1)}
		}
		if _, err := d.do(ctx, c, nil, 0, append(params, chunk...)...); err != nil {
			return fmt.Errorf("st25dv: write blocks %d..%d: %w", b, b+n-1, err)
		}
		b += n
	}
	return nil
}

// ReadConfig reads a static system register by its RF pointer (A0h).
func (d *ST25DV) ReadConfig(ctx context.Context, ptr byte) (byte, error) {
	return d.readReg(ctx, cmdReadConfig, "config", ptr)
}

// WriteConfig writes a static system register (A1h); the tag requires the
// RF configuration session (PresentPassword 0) and LOCK_CFG = 0 (DS §5.6.4).
func (d *ST25DV) WriteConfig(ctx context.Context, ptr, v byte) error {
	return d.writeReg(ctx, cmdWriteConfig, "config", ptr, v)
}

// ReadDynConfig reads a dynamic register (ADh): 00h GPO_CTRL_Dyn, 02h
// EH_CTRL_Dyn, 0Dh MB_CTRL_Dyn.
func (d *ST25DV) ReadDynConfig(ctx context.Context, ptr byte) (byte, error) {
	return d.readReg(ctx, cmdReadDyn, "dynamic config", ptr)
}

// WriteDynConfig writes a dynamic register (AEh); no password needed.
func (d *ST25DV) WriteDynConfig(ctx context.Context, ptr, v byte) error {
	return d.writeReg(ctx, cmdWriteDyn, "dynamic config", ptr, v)
}

// readReg reads one register with cmd (A0h or ADh); kind names the register
// set in errors.
func (d *ST25DV) readReg(ctx context.Context, c cmd, kind string, ptr byte) (byte, error) {
	p, err := d.do(ctx, c, nil, 1, ptr)
	if err != nil {
		return 0, fmt.Errorf("st25dv: read %s %02Xh: %w", kind, ptr, err)
	}
	return p[0], nil
}

// writeReg writes one register with cmd (A1h or AEh).
func (d *ST25DV) writeReg(ctx context.Context, c cmd, kind string, ptr, v byte) error {
	if _, err := d.do(ctx, c, nil, 0, ptr, v); err != nil {
		return fmt.Errorf("st25dv: write %s %02Xh: %w", kind, ptr, err)
	}
	return nil
}

// PresentPassword opens RF session n (0 = configuration, 1..3 = user areas)
// with B3h. The 8 bytes go on air in the order given (byte order of RF
// passwords is UNCONFIRMED in the datasheet; RFAL sends the buffer as is).
// A wrong password closes all RF sessions and gives ISOError 0Fh.
func (d *ST25DV) PresentPassword(ctx context.Context, n byte, pwd [8]byte) error {
	if _, err := d.do(ctx, cmdPresentPwd, nil, 0, append([]byte{n}, pwd[:]...)...); err != nil {
		return fmt.Errorf("st25dv: present password %d: %w", n, err)
	}
	return nil
}

// WritePassword changes RF password n (B1h); its session must be open.
func (d *ST25DV) WritePassword(ctx context.Context, n byte, pwd [8]byte) error {
	if _, err := d.do(ctx, cmdWritePwd, nil, 0, append([]byte{n}, pwd[:]...)...); err != nil {
		return fmt.Errorf("st25dv: write password %d: %w", n, err)
	}
	return nil
}
