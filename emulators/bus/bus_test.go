package bus

import (
	"context"
	"errors"
	"testing"
	"time"
)

type echo struct{ addr uint16 }

func (e echo) Claims(a uint16) bool { return a == e.addr }
func (e echo) Tx(_ uint16, w, r []byte) error {
	copy(r, w)
	return nil
}

func TestBusRoutesAndNACKsUnclaimedAddresses(t *testing.T) {
	var b Bus
	b.Attach(echo{0x53})
	r := make([]byte, 2)
	if err := b.Tx(0x53, []byte{1, 2}, r); err != nil || r[0] != 1 || r[1] != 2 {
		t.Fatalf("Tx to 0x53: %v %v", r, err)
	}
	err := b.Tx(0x57, []byte{0}, nil)
	var n *NACKError
	if !errors.As(err, &n) || n.Addr != 0x57 || n.Index != 0 || !IsNACK(err) {
		t.Fatalf("Tx to nobody = %v, want address NACK", err)
	}
	if err.Error() != "i2c: device 0x57: address NACK" {
		t.Fatalf("message %q", err)
	}
}

func TestLineCountsPulsesBeforeWait(t *testing.T) {
	l := NewLine()
	l.Pulse()
	l.Pulse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		if err := l.WaitForEdge(ctx); err != nil {
			t.Fatalf("edge %d: %v", i, err)
		}
	}
	short, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := l.WaitForEdge(short); !errors.Is(err, context.Canceled) {
		t.Fatalf("third wait = %v, want canceled (only two pulses)", err)
	}
}

func TestLineWakesWaiter(t *testing.T) {
	l := NewLine()
	done := make(chan error, 1)
	go func() { done <- l.WaitForEdge(context.Background()) }()
	l.Set(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !l.Active() {
		t.Fatal("line not held")
	}
	l.Set(true) // still held: no new edge
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.WaitForEdge(ctx); err == nil {
		t.Fatal("holding an active line made a second edge")
	}
}

// Edge is closed by the next pulse, or at once when an edge is pending;
// Drain consumes them all.
func TestLineEdgeAndDrain(t *testing.T) {
	l := NewLine()
	e := l.Edge()
	select {
	case <-e:
		t.Fatal("edge closed with nothing pending")
	default:
	}
	l.Pulse()
	select {
	case <-e:
	default:
		t.Fatal("a pulse did not close the edge channel taken before it")
	}
	l.Pulse()
	select {
	case <-l.Edge():
	default:
		t.Fatal("edges pending, yet Edge is not closed")
	}
	if n := l.Drain(); n != 2 {
		t.Fatalf("drained %d edges, want 2", n)
	}
	select {
	case <-l.Edge():
		t.Fatal("Edge closed after Drain")
	default:
	}
}
