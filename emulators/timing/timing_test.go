package timing

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestInstantAccountsWithoutSleeping(t *testing.T) {
	c := NewClock(Instant)
	start := time.Now()
	if err := c.Spend(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > time.Minute {
		t.Fatal("instant clock slept")
	}
	if c.Modeled() != time.Hour {
		t.Fatalf("modeled %v", c.Modeled())
	}
}

func TestRealisticSleepsAndHonoursContext(t *testing.T) {
	c := NewClock(Realistic)
	start := time.Now()
	if err := c.Spend(context.Background(), 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 5*time.Millisecond {
		t.Fatal("realistic clock did not sleep")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Spend(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Spend on a cancelled context = %v", err)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": Instant, "instant": Instant, "realistic": Realistic} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseMode("fast"); err == nil {
		t.Error("ParseMode(fast) accepted")
	}
	var nilClock *Clock
	if nilClock.Spend(context.Background(), time.Second) != nil || nilClock.Modeled() != 0 || nilClock.Mode() != Instant {
		t.Error("nil clock is not an instant no-op")
	}
}

func TestVirtualInsideSynctestBubble(t *testing.T) {
	if Virtual() {
		t.Fatal("Virtual() outside a bubble")
	}
	synctest.Test(t, func(t *testing.T) {
		if !Virtual() {
			t.Fatal("Virtual() is false inside a synctest bubble: the runtime now gives time.Now a monotonic reading there; detect the bubble another way")
		}
		c := NewClock(Realistic)
		// Sub-millisecond and fine-window durations are exact: no nanosleep
		// or yielding loop, which would not move the bubble's clock.
		for _, d := range []time.Duration{1, 100 * time.Microsecond, 3757 * time.Microsecond, fineWindow, time.Hour} {
			start := time.Now()
			if err := c.Spend(context.Background(), d); err != nil {
				t.Fatal(err)
			}
			if got := time.Since(start); got != d {
				t.Errorf("Spend(%v) took %v of virtual time", d, got)
			}
		}
		// A context ending in virtual time ends the wait there.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		if err := c.Spend(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Spend past the deadline = %v", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("cancelled Spend returned after %v", got)
		}
	})
}
