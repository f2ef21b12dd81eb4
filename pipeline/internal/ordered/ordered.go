// Package ordered runs work on many goroutines and hands the results on
// in order, with a bound on how far the workers run ahead.
package ordered

import (
	"context"
	"sync"
	"sync/atomic"
)

// Map calls work(i, state) for every i in 0..n-1 on up to workers
// goroutines, each with a state of its own it may reuse from one i to the
// next (a decode buffer, say), and fn(i, result) for every i in order on
// the caller's goroutine. At most lookahead results wait for fn. It
// returns the first error of work or fn in frame order, or ctx's error,
// and only once every worker has stopped.
func Map[S, T any](ctx context.Context, n, workers, lookahead int, work func(i int, state *S) (T, error), fn func(i int, v T) error) error {
	type result struct {
		v   T
		err error
	}
	slots := make([]chan result, n)
	for i := range slots {
		slots[i] = make(chan result, 1)
	}
	tokens := make(chan struct{}, max(lookahead, 1))
	var next atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Deferred in this order so that the workers are told to stop before
	// they are waited for.
	defer wg.Wait()
	defer cancel()
	for range min(max(workers, 1), n) {
		wg.Go(func() {
			var state S
			for {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				v, err := work(i, &state)
				slots[i] <- result{v, err}
			}
		})
	}
	for i := range n {
		var r result
		select {
		case r = <-slots[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		if err := fn(i, r.v); err != nil {
			return err
		}
		<-tokens
	}
	return nil
}
