package ordered

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestMapKeepsOrderAndBoundsLookahead(t *testing.T) {
	var started atomic.Int64
	var got []int
	err := Map(context.Background(), 200, 4, 5, func(i int, _ *struct{}) (int, error) {
		started.Add(1)
		time.Sleep(time.Duration(i%3) * 100 * time.Microsecond)
		return i * i, nil
	}, func(i, v int) error {
		if v != i*i {
			t.Fatalf("result %d for %d", v, i)
		}
		// Frames started but not yet passed on never exceed the lookahead.
		if a := started.Load() - int64(len(got)); a > 5 {
			t.Fatalf("%d frames ahead of the one passed on", a)
		}
		got = append(got, i)
		return nil
	})
	if err != nil || len(got) != 200 {
		t.Fatalf("err %v, %d results", err, len(got))
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("result %d out of order: %d", i, v)
		}
	}
}

func TestMapStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("frame 7 is bad")
	var after atomic.Int64
	err := Map(context.Background(), 100, 2, 4, func(i int, _ *struct{}) (int, error) {
		if i == 7 {
			return 0, boom
		}
		if i > 40 {
			after.Add(1)
		}
		return i, nil
	}, func(i, v int) error { return nil })
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
	if after.Load() > 0 {
		t.Errorf("%d frames far past the error were still worked on", after.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Map(ctx, 10, 2, 4, func(i int, _ *struct{}) (int, error) { return i, nil }, func(int, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
