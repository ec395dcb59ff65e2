package fleet_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tap2join/tap2join/rigs"
)

// BenchmarkFleet provisions N boards concurrently, tap to join, through one
// embedded ChirpStack and one emulated gateway (timing: instant). Rig
// bring-up (N board twins booting) is outside the timer. Metrics:
// devices/s, p50-ms and p99-ms of tap → join, and bringup-s.
//
//	go test -run '^$' -bench Fleet -benchtime 1x ./suites/fleet
//	go test -run '^$' -bench 'Fleet/N=1000$' -benchtime 1x -cpuprofile cpu.out ./suites/fleet
//	go test -run '^$' -bench 'Fleet/N=10000$' -benchtime 1x ./suites/fleet
func BenchmarkFleet(b *testing.B) {
	// N=10,000 (issue 15's target: ≤ 10 s) takes ≈ 26 s today: run it by
	// name (-bench 'Fleet/N=10000$').
	sizes := []int{10, 100, 1000}
	if strings.Contains(fmt.Sprint(os.Args), "N=10000") {
		sizes = append(sizes, 10000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			var last fleetStats
			var bringup time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				f, err := fleetFile(n, 1, i%256)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				t0 := time.Now()
				rig, err := rigs.Up(ctx, f, rigs.Options{NoConsoles: true, FirmwarePoll: fleetPoll, RXWindowCap: fleetRXCap})
				if err != nil {
					cancel()
					b.Fatal(err)
				}
				bringup = time.Since(t0)
				b.StartTimer()
				last, err = provisionFleet(ctx, rig)
				b.StopTimer()
				if cerr := rig.Close(); err == nil {
					err = cerr
				}
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(last.DevicesPerSecond(), "devices/s")
			b.ReportMetric(ms(last.Percentile(50)), "p50-ms")
			b.ReportMetric(ms(last.Percentile(99)), "p99-ms")
			b.ReportMetric(bringup.Seconds(), "bringup-s")
			b.ReportMetric(float64(last.Uplinks)/float64(n), "uplinks/device")
			// Where the time goes: each phase's median, to find what queues.
			for ph, d := range last.Phases {
				b.ReportMetric(ms(percentile(d, 50)), "p50-ms-"+strings.ReplaceAll(ph, " ", "-"))
				b.ReportMetric(ms(percentile(d, 99)), "p99-ms-"+strings.ReplaceAll(ph, " ", "-"))
			}
		})
	}
}

// fleetPoll is a fleet board's mailbox poll besides its GPO interrupt
// (rigs.Options.FirmwarePoll): at the firmware's 100 ms, 10,000 idle boards
// cost the host 100,000 mailbox reads a second.
const fleetPoll = 2 * time.Second

// fleetRXCap bounds the wall time a fleet board's receive window waits in
// instant timing (rigs.Options.RXWindowCap, default 2 s): with thousands
// of JoinRequests queued at the network, an answer may take longer than
// that to come back, and a board that closed its window retries.
const fleetRXCap = 30 * time.Second

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
