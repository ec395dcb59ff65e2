package stm32wl5

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// The board's serial console on a pty.
//
// A NUCLEO-WL55JC shows its LPUART1 (9600 8N1, STM32CubeWL LoRaWAN_AT_Slave
// Core/Src/usart.c and readme.txt; Zephyr nucleo_wl55jc.dts console = lpuart1)
// to the host as the ST-LINK's USB CDC port, /dev/ttyACM<n> with a stable
// /dev/serial/by-id/usb-STMicroelectronics_STLINK-V3_<serial>-if02 link
// (usual ST-LINK VCP naming, not checked on this board: UNCONFIRMED). The
// twin does the same with a pty: the AT shell
// holds the master, the host opens the slave — through a stable symbolic link
// (Path) that plays the by-id link.
//
// Resets. On a NUCLEO the VCP belongs to the ST-LINK, which an MCU reset
// (ATZ, AT+RFS) does not touch: the port stays, only the banner shows the
// reset. That is the default here. With ReenumerateOnReset the port behaves
// like an MCU-native USB CDC port instead: on a reset the pty is closed (the
// host's reads fail), the link vanishes for ReenumerateDelay, and a new pty
// appears behind the same link — what a host sees when a USB device
// re-enumerates. Drivers must survive both (rigs/at does).
//
// The twin keeps its own handle on the slave so the tty exists while no host
// has it open; output written meanwhile waits in the tty's input queue, and
// the UART side drops output rather than stall when that queue is full.

// SerialOptions configures the serial console.
type SerialOptions struct {
	// Dir holds the stable link; "" = a new temporary directory, removed by
	// Close.
	Dir string
	// Name of the link; default usb-STMicroelectronics_STLINK-V3_<unique id>-if02.
	Name string
	// ReenumerateOnReset: the port vanishes on an MCU reset and comes back as
	// a new pty behind the same link (see above). Default false (ST-LINK VCP).
	ReenumerateOnReset bool
	// ReenumerateDelay is how long the port is absent (wall time; default 100 ms).
	ReenumerateDelay time.Duration
}

// SerialPort is the board's serial console as the host sees it.
type SerialPort struct {
	b      *MCU
	opts   SerialOptions
	link   string
	ownDir bool
	done   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	master *os.File
	slave  *os.File
	tty    string
	upCh   chan struct{} // closed while the port is present
	closed bool
	enums  int
}

// StartSerial gives the board its serial console. Call it before Run so the
// first boot banner reaches the port.
func (b *MCU) StartSerial(opts SerialOptions) (*SerialPort, error) {
	if b.con != nil {
		return nil, errors.New("stm32wl5: serial console already started")
	}
	if opts.ReenumerateDelay == 0 {
		opts.ReenumerateDelay = 100 * time.Millisecond
	}
	if opts.Name == "" {
		opts.Name = fmt.Sprintf("usb-STMicroelectronics_STLINK-V3_%X-if02", b.cfg.UniqueID)
	}
	p := &SerialPort{b: b, opts: opts, done: make(chan struct{}), upCh: make(chan struct{})}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "tap2join-serial-")
		if err != nil {
			return nil, fmt.Errorf("stm32wl5: serial: %w", err)
		}
		opts.Dir, p.ownDir = d, true
	}
	p.link = filepath.Join(opts.Dir, opts.Name)
	if err := p.attach(); err != nil {
		if p.ownDir {
			os.RemoveAll(opts.Dir)
		}
		return nil, err
	}
	con := newConsole()
	con.onReset = p.onReset
	b.con = con
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.writeLoop(con) }()
	return p, nil
}

// Path is the stable path a host opens (the link).
func (p *SerialPort) Path() string { return p.link }

// TTY is the pty slave currently behind the link ("" while absent).
func (p *SerialPort) TTY() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tty
}

// Enumerations counts how many times the port appeared (1 + re-enumerations).
func (p *SerialPort) Enumerations() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.enums
}

// attach creates a pty and points the link at it.
func (p *SerialPort) attach() error {
	master, slave, err := openPTY()
	if err != nil {
		return fmt.Errorf("stm32wl5: serial: open pty: %w", err)
	}
	if err := uartTermios(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("stm32wl5: serial: %w", err)
	}
	tmp := p.link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(slave.Name(), tmp); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("stm32wl5: serial: link: %w", err)
	}
	if err := os.Rename(tmp, p.link); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("stm32wl5: serial: link: %w", err)
	}
	p.mu.Lock()
	p.master, p.slave, p.tty = master, slave, slave.Name()
	p.enums++
	close(p.upCh)
	p.mu.Unlock()
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.readLoop(master) }()
	return nil
}

// openPTY opens a pty pair whose master goes through Go's poller, so that
// closing it interrupts the reader and really closes the fd — which hangs up
// the slave for the host, as an unplugged USB device does. (The master
// creack/pty returns may be in blocking mode, where a pending read keeps the
// fd open after Close.)
func openPTY() (master, slave *os.File, err error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, nil, err
	}
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("dup pty master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		s.Close()
		return nil, nil, fmt.Errorf("pty master non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), s, nil
}

// detach removes the link and closes the pty: the host's reads fail.
func (p *SerialPort) detach() {
	p.mu.Lock()
	m, s := p.master, p.slave
	if m != nil {
		p.master, p.slave, p.tty = nil, nil, ""
		p.upCh = make(chan struct{})
	}
	p.mu.Unlock()
	if m == nil {
		return
	}
	_ = os.Remove(p.link)
	m.Close()
	s.Close()
}

// uartTermios puts the tty in raw mode at 9600 8N1 without flow control,
// LPUART1's settings (usart.c; a pty ignores the rate).
func uartTermios(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | unix.B9600
	t.Ispeed, t.Ospeed = unix.B9600, unix.B9600
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set termios: %w", err)
	}
	return nil
}

// onReset runs when the MCU resets (before the next boot).
func (p *SerialPort) onReset() {
	if !p.opts.ReenumerateOnReset {
		return
	}
	p.detach()
	t := time.NewTimer(p.opts.ReenumerateDelay)
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return
	}
	if err := p.attach(); err != nil {
		p.b.logf("serial: re-enumeration failed: %v", err)
	}
}

func (p *SerialPort) readLoop(master *os.File) {
	buf := make([]byte, 256)
	for {
		n, err := master.Read(buf)
		if n > 0 {
			p.b.atInput(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func (p *SerialPort) writeLoop(con *console) {
	for {
		var line []byte
		select {
		case <-p.done:
			return
		case line = <-con.out:
		}
		for {
			p.mu.Lock()
			m, up := p.master, p.upCh
			p.mu.Unlock()
			if m != nil {
				_, _ = m.Write(line) // a write to a closing pty is lost, as on a UART
				break
			}
			select {
			case <-p.done:
				return
			case <-up:
			}
		}
	}
}

// Close removes the port. The board keeps running without a console.
func (p *SerialPort) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.done)
	p.detach()
	p.wg.Wait()
	if p.ownDir {
		return os.RemoveAll(p.opts.Dir)
	}
	return nil
}
