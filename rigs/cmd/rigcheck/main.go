// Command rigcheck validates rig files without bringing anything up: every
// setting is checked as a run would, and what Up leaves to the lab's job or
// cannot do with the file (flashing; a real gateway that cannot reach its
// network server) is listed, not refused.
//
//	go run ./rigs/cmd/rigcheck rigs/lab-nucleo-wl55.yaml
//
// Exit status: 0 valid (gaps are printed), 1 invalid, 2 usage.
package main

import (
	"fmt"
	"os"

	"github.com/tap2join/tap2join/rigs"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rigcheck RIG.yaml...")
		os.Exit(2)
	}
	status := 0
	for _, p := range os.Args[1:] {
		f, gaps, err := rigs.Validate(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			status = 1
			continue
		}
		fmt.Printf("%s: rig %q valid: %d board(s), %d gateway(s)\n", p, f.Name, len(f.Boards), len(f.Gateways))
		for _, g := range gaps {
			fmt.Printf("  not done by Up: %s\n", g)
		}
	}
	os.Exit(status)
}
