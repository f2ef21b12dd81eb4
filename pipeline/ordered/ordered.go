// Package ordered runs work on several goroutines and hands the results
// on in the order the work came in, with a bound on how many items are in
// flight: the one ordered worker pool of the client's encoder, the
// rebuilding of a session's video, and the decoding of an MJPEG video.
//
// Run takes items from a producer of any length (a camera, a session's
// frames); Map is Run over the numbers 0 to n-1.
package ordered

import (
	"context"
	"sync"
)

// Run calls produce once, which passes items to put one after another;
// work(item, state) for every item on up to workers goroutines, each with
// a state of its own it may reuse from one item to the next (a decode
// buffer, say); and consume(result) for every item, in the order put, on
// the caller's goroutine, each as soon as it and the items before it are
// done. At most lookahead items are in flight, put and not yet consumed:
// put blocks while that many are, which bounds the memory whatever the
// number of items.
//
// Run returns the first error in item order: work's error for an item once
// the items before it are consumed, produce's error once every item it put
// is consumed, consume's error at once; or ctx's error. Once Run is
// stopping, put returns an error and does not take the item; produce
// should then return, and what it returns is ignored. Run returns only
// once produce and every worker have returned.
//
// With workers below 1, Run does everything on the caller's goroutine, one
// item at a time: put works and consumes the item before it returns. This
// is for work too cheap to hand to another goroutine.
func Run[In, S, Out any](ctx context.Context, workers, lookahead int,
	produce func(put func(In) error) error,
	work func(in In, state *S) (Out, error),
	consume func(Out) error) error {
	if workers < 1 {
		return inline(ctx, produce, work, consume)
	}
	lookahead = max(lookahead, 1)
	type result struct {
		v   Out
		err error
	}
	type job struct {
		in  In
		out chan<- result
	}
	// tokens holds one entry per item in flight. The other channels need
	// no more room than the tokens allow, so sends on them never block.
	tokens := make(chan struct{}, lookahead)
	jobs := make(chan job, lookahead)
	// queue holds the results of the items in flight, oldest first, and
	// the producer's error after them.
	queue := make(chan chan result, lookahead+1)

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Deferred in this order so that everything is told to stop before it
	// is waited for.
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		defer close(queue)
		defer close(jobs)
		err := produce(func(in In) error {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			out := make(chan result, 1)
			queue <- out
			jobs <- job{in, out}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			out := make(chan result, 1)
			out <- result{err: err}
			queue <- out
		}
	})
	for range workers {
		wg.Go(func() {
			var state S
			for j := range jobs {
				if err := ctx.Err(); err != nil {
					// Stopping: the items still queued are dropped.
					j.out <- result{err: err}
					continue
				}
				v, err := work(j.in, &state)
				j.out <- result{v, err}
			}
		})
	}
	for {
		var out chan result
		var ok bool
		select {
		case out, ok = <-queue:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			// The producer may have stopped because ctx was canceled
			// before it put anything: that is no success.
			return ctx.Err()
		}
		var r result
		select {
		case r = <-out:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		if err := consume(r.v); err != nil {
			return err
		}
		<-tokens
	}
}

// inline is Run with no workers.
func inline[In, S, Out any](ctx context.Context, produce func(put func(In) error) error, work func(in In, state *S) (Out, error), consume func(Out) error) error {
	var state S
	var cause error
	err := produce(func(in In) error {
		if cause != nil {
			return cause
		}
		if cause = ctx.Err(); cause != nil {
			return cause
		}
		v, err := work(in, &state)
		if err == nil {
			err = consume(v)
		}
		cause = err
		return err
	})
	if cause != nil {
		return cause
	}
	return err
}

// Map is Run over the items 0 to n-1: it calls work(i, state) for every i
// on up to workers goroutines and fn(i, result) for every i in order on
// the caller's goroutine, with at most lookahead results waiting for fn.
// It returns the first error of work or fn in item order, or ctx's error,
// and only once every worker has stopped.
func Map[S, T any](ctx context.Context, n, workers, lookahead int, work func(i int, state *S) (T, error), fn func(i int, v T) error) error {
	type result struct {
		i int
		v T
	}
	return Run(ctx, workers, lookahead, func(put func(int) error) error {
		for i := range n {
			if err := put(i); err != nil {
				return err
			}
		}
		return nil
	}, func(i int, state *S) (result, error) {
		v, err := work(i, state)
		return result{i, v}, err
	}, func(r result) error { return fn(r.i, r.v) })
}
