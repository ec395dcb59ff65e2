package timing

import (
	"context"
	"errors"
	"testing"
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
