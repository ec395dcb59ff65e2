// Command flash flashes the boards of a rig file that have a flash part
// (rig file `flash:`; rigs/flashpart.go), printing each tool's output as it
// runs — what `make flash RIG=…` does, and what rigs.Up does before it
// checks the version a board reports. An emulated board's image is only
// read: its descriptor says which version the twin will run.
//
//	go run ./rigs/cmd/flash rigs/lab-nucleo-wl55.yaml
//	go run ./rigs/cmd/flash -make-image out/fw.bin -version 1.4.0   # a test image with a descriptor
//
// Exit status: 0 flashed (or nothing to flash), 1 a board failed, 2 usage
// or a bad rig file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tap2join/tap2join/rigs"
	"github.com/tap2join/tap2join/rigs/flash"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	makeImage := fs.String("make-image", "", "write a test image (1 KiB, the descriptor at 0x200) to this .bin file and exit")
	version := fs.String("version", "1.3.1", "with -make-image: the descriptor's version")
	target := fs.String("target", rigs.DefaultFlashTarget, "with -make-image: the descriptor's target")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flash RIG.yaml | flash -make-image FILE.bin [-version X.Y.Z] [-target MCU]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *makeImage != "" {
		if err := writeImage(*makeImage, *target, *version); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		fmt.Fprintf(stdout, "wrote %s: target %s, version %s\n", *makeImage, *target, *version)
		return 0
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	path, err := rigs.Find(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	f, err := rigs.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	status, any := 0, false
	for _, b := range f.Boards {
		if b.Flash == nil {
			continue
		}
		any = true
		if b.Emulated {
			rep, err := rigs.FlashEmulated(b)
			if err != nil {
				fmt.Fprintf(stderr, "board %s: %v\n", b.Name, err)
				status = 1
				continue
			}
			fmt.Fprintf(stdout, "board %s: %s\n", b.Name, rep.Output)
			continue
		}
		// The board's lease first: never flash a board another job is using.
		release, err := rigs.HoldBoardLease(ctx, b, func(h string) { fmt.Fprintf(stdout, "board %s: waiting for lease %s\n", b.Name, h) })
		if err != nil {
			fmt.Fprintf(stderr, "board %s: %v\n", b.Name, err)
			status = 1
			continue
		}
		fmt.Fprintf(stdout, "board %s: flashing with %s\n", b.Name, b.Flash.Tool)
		rep, err := rigs.FlashRealBoard(ctx, b, stdout, lg)
		release()
		if err != nil {
			fmt.Fprintf(stderr, "board %s: %v\n", b.Name, err)
			status = 1
			continue
		}
		if rep.Skipped != "" {
			fmt.Fprintf(stdout, "board %s: %s not flashed: %s\n", b.Name, rep.Image, rep.Skipped)
			continue
		}
		fmt.Fprintf(stdout, "board %s: flashed %s in %v\n", b.Name, rep.Image, rep.Elapsed.Round(time.Millisecond))
	}
	if !any {
		fmt.Fprintf(stdout, "%s: no board has a flash part (flash: in the rig file)\n", path)
	}
	return status
}

func writeImage(path, target, version string) error {
	var v [3]byte
	parts := strings.Split(version, ".")
	if len(parts) != 3 {
		return fmt.Errorf("flash: version %q is not major.minor.patch", version)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return fmt.Errorf("flash: version %q: %v", version, err)
		}
		v[i] = byte(n)
	}
	d, err := flash.Descriptor{Target: target, Version: v}.Marshal()
	if err != nil {
		return err
	}
	if !strings.HasSuffix(path, ".bin") {
		return errors.New("flash: -make-image writes a .bin")
	}
	img := make([]byte, 1024)
	copy(img[0x200:], d)
	return os.WriteFile(path, img, 0o644)
}
