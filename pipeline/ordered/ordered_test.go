package ordered

import (
	"context"
	"errors"
	"fmt"
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
	// Repeated: the producer's stop and the context's may reach the
	// consumer in either order.
	for range 200 {
		if err := Map(ctx, 10, 2, 4, func(i int, _ *struct{}) (int, error) { return i, nil }, func(int, int) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled: %v", err)
		}
	}
}

func TestRunPassesTheProducersErrorAfterItsItems(t *testing.T) {
	eof := errors.New("camera unplugged after 30 frames")
	for _, workers := range []int{0, 1, 3} {
		var got []int
		err := Run(context.Background(), workers, 4, func(put func(int) error) error {
			for i := range 30 {
				if err := put(i); err != nil {
					return err
				}
			}
			return eof
		}, func(i int, _ *struct{}) (int, error) {
			time.Sleep(time.Duration(i%3) * 100 * time.Microsecond)
			return -i, nil
		}, func(v int) error {
			got = append(got, -v)
			return nil
		})
		if !errors.Is(err, eof) {
			t.Fatalf("%d workers: error %v, want %v", workers, err, eof)
		}
		if len(got) != 30 {
			t.Fatalf("%d workers: %d items consumed before the producer's error, want all 30", workers, len(got))
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("%d workers: item %d consumed as %d", workers, i, v)
			}
		}
	}
}

func TestRunStopsTheProducerAtTheFirstError(t *testing.T) {
	boom := errors.New("frame 5 does not encode")
	for _, workers := range []int{0, 2} {
		var put, putErrs int
		var produceErr error
		err := Run(context.Background(), workers, 3, func(p func(int) error) error {
			for i := range 1000 {
				if produceErr = p(i); produceErr != nil {
					putErrs++
					return fmt.Errorf("wrapped: %w", produceErr)
				}
				put++
			}
			return nil
		}, func(i int, _ *struct{}) (int, error) {
			if i == 5 {
				return 0, boom
			}
			return i, nil
		}, func(int) error { return nil })
		if !errors.Is(err, boom) || err.Error() != boom.Error() {
			t.Fatalf("%d workers: error %v, want %v itself", workers, err, boom)
		}
		// The producer is stopped within the lookahead of the failure.
		if putErrs != 1 || put > 5+3+1 {
			t.Errorf("%d workers: %d items put, %d failed puts; want at most 9 and 1", workers, put, putErrs)
		}
	}
}

func TestRunStopsWhenTheConsumerFails(t *testing.T) {
	full := errors.New("disk full")
	var worked atomic.Int64
	err := Run(context.Background(), 2, 4, func(put func(int) error) error {
		for i := 0; ; i++ {
			if err := put(i); err != nil {
				return err
			}
		}
	}, func(i int, _ *struct{}) (int, error) {
		worked.Add(1)
		return i, nil
	}, func(v int) error {
		if v == 10 {
			return full
		}
		return nil
	})
	if !errors.Is(err, full) {
		t.Fatalf("error %v, want %v", err, full)
	}
	if n := worked.Load(); n > 10+1+4 {
		t.Errorf("%d items worked on for a consumer that failed at item 10", n)
	}
}

func TestRunInlineUsesTheCallersGoroutine(t *testing.T) {
	// With no workers, work and consume run inside put: an item is
	// consumed before the next is produced.
	var consumed []int
	err := Run(context.Background(), 0, 4, func(put func(int) error) error {
		for i := range 5 {
			if len(consumed) != i {
				return fmt.Errorf("item %d produced with %d consumed", i, len(consumed))
			}
			if err := put(i); err != nil {
				return err
			}
		}
		return nil
	}, func(i int, calls *int) (int, error) {
		*calls++
		if *calls != i+1 {
			return 0, fmt.Errorf("the state was not kept: call %d for item %d", *calls, i)
		}
		return i, nil
	}, func(v int) error {
		consumed = append(consumed, v)
		return nil
	})
	if err != nil || len(consumed) != 5 {
		t.Fatalf("err %v, %d consumed", err, len(consumed))
	}
}
