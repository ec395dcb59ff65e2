// Command rigcheck validates rig files without bringing anything up: every
// setting is checked as a run would, what Up leaves to the lab's job or
// cannot do with the file (flashing; a real gateway that cannot reach its
// network server) is listed, and — unless -offline — the parts a lab rig
// names are looked for on this machine: each real board's serial port and
// PC/SC reader (naming the ones that are there instead), and values the file
// still marks as placeholders.
//
//	go run ./rigs/cmd/rigcheck rigs/lab-nucleo-wl55.yaml
//	go run ./rigs/cmd/rigcheck -offline rigs/lab-nucleo-wl55.yaml   # on a machine away from the bench
//	go run ./rigs/cmd/rigcheck -plan=false rigs/lab-nucleo-wl55.yaml # without the spec plan
//
// It also prints the spec plan (plan.go): every spec, whether a run on the
// rig runs or skips it, and why — from the capabilities the file's bench
// will offer (compiling the suites takes a while; -plan=false leaves it out).
//
// Exit status: 0 valid (gaps are printed), 1 invalid or the bench is not as
// the file says, 2 usage.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tap2join/tap2join/rigs"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rigcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	offline := fs.Bool("offline", false, "check the file only; do not look for its ports and readers on this machine")
	doPlan := fs.Bool("plan", true, "print the spec plan: which specs a run on the rig runs and which skip, and why (compiles the suites: ginkgo --dry-run)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rigcheck [-offline] RIG.yaml...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		if err == nil {
			fs.Usage()
		}
		return 2
	}
	status := 0
	for _, p := range fs.Args() {
		f, gaps, err := rigs.Validate(p)
		if err != nil {
			fmt.Fprintln(stderr, err)
			status = 1
			continue
		}
		problems := []string(nil)
		if !*offline {
			if problems, err = rigs.CheckBench(p); err != nil {
				fmt.Fprintln(stderr, err)
				status = 1
				continue
			}
		}
		if len(problems) > 0 {
			fmt.Fprintf(stderr, "%s: rig %q: the bench is not as the file says:\n", p, f.Name)
			for _, pr := range problems {
				fmt.Fprintf(stderr, "  %s\n", pr)
			}
			status = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: rig %q valid: %d board(s), %d gateway(s)\n", p, f.Name, len(f.Boards), len(f.Gateways))
		for _, g := range gaps {
			fmt.Fprintf(stdout, "  not done by Up: %s\n", g)
		}
		if *doPlan {
			specs, err := plan(p, f, stderr)
			if err != nil {
				fmt.Fprintln(stderr, err)
				status = 1
				continue
			}
			printPlan(stdout, specs)
		}
	}
	return status
}
