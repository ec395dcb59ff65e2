// Command lease lists who holds which bench resource: the lease files of
// one host (rigs/lease, -dir) or the leases a lab keeps in etcd (-etcd, or
// $TAP2JOIN_ETCD_ENDPOINTS).
//
//	go run ./rigs/cmd/lease                                # /run/lock/tap2join or $TAP2JOIN_LEASE_DIR
//	go run ./rigs/cmd/lease -etcd http://etcd.lab:2379
//
// One line per lease: "nucleo-wl55-1 held by job X (pid 123 on runner-2) until 2026-12-06T19:40:00Z".
// Exit status: 0 listed (none held included), 1 the store cannot be read, 2 usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tap2join/tap2join/rigs/lease"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lease", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "lease directory of the file backend (default $TAP2JOIN_LEASE_DIR, else /run/lock/tap2join)")
	endpoints := fs.String("etcd", os.Getenv(lease.EndpointsEnv), "etcd client URLs, comma-separated: list the etcd backend's leases")
	prefix := fs.String("prefix", "", "etcd key prefix (default /tap2join/leases/)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 1 || (fs.NArg() == 1 && fs.Arg(0) != "list") {
		if err == nil {
			fmt.Fprintln(stderr, "usage: lease [-dir DIR | -etcd URL,...] [list]")
		}
		return 2
	}
	var infos []lease.Info
	var err error
	where := ""
	if *endpoints != "" {
		var eps []string
		for _, e := range strings.Split(*endpoints, ",") {
			if e = strings.TrimSpace(e); e != "" {
				eps = append(eps, e)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		infos, err = lease.ListEtcd(ctx, lease.Etcd{Endpoints: eps, Prefix: *prefix})
		where = "etcd " + *endpoints
	} else {
		infos, err = lease.List(*dir)
		where = "lease files"
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if len(infos) == 0 {
		fmt.Fprintf(stdout, "no lease held (%s)\n", where)
	}
	now := time.Now()
	for _, i := range infos {
		line := i.String()
		if now.After(i.Expires) {
			line += " (expired)"
		}
		fmt.Fprintln(stdout, line)
	}
	return 0
}
