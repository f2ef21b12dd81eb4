package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// workerPool hands out the ProcessingWorkers places phrases are processed
// in. Streamed phrases come first: a waiting stream gets the next free
// place before any upload, and uploads hold at most all places but one (when
// there are two or more), so a streamed phrase never waits behind a queue
// of uploads. Uploads wait in a queue of at most maxQueued; past it they
// are refused at once.
type workerPool struct {
	mu         sync.Mutex
	free       int
	uploads    int // places held by uploads
	maxUploads int
	maxQueued  int
	streams    []chan struct{} // waiting, first come first served
	queued     []chan struct{} // uploads waiting
}

func newWorkerPool(workers, maxQueued int) *workerPool {
	return &workerPool{free: workers, maxUploads: max(workers-1, 1), maxQueued: maxQueued}
}

// queueFullError refuses an upload whose job would wait behind maxQueued
// others.
type queueFullError struct{ waiting, limit int }

func (e *queueFullError) Error() string {
	return fmt.Sprintf("analysis queue full: %d uploads wait for a worker, the limit is %d (max queued uploads); try again later", e.waiting, e.limit)
}

// acquire waits for a place, for an upload or a streamed phrase, until ctx
// ends; release gives it back. An upload that would wait behind maxQueued
// others gets a *queueFullError at once.
func (p *workerPool) acquire(ctx context.Context, upload bool) (release func(), err error) {
	release = func() { p.release(upload) }
	p.mu.Lock()
	if p.free > 0 && len(p.streams) == 0 && (!upload || p.uploads < p.maxUploads && len(p.queued) == 0) {
		p.take(upload)
		p.mu.Unlock()
		return release, nil
	}
	queue := &p.streams
	if upload {
		if len(p.queued) >= p.maxQueued {
			n := len(p.queued)
			p.mu.Unlock()
			return nil, &queueFullError{n, p.maxQueued}
		}
		queue = &p.queued
	}
	granted := make(chan struct{})
	*queue = append(*queue, granted)
	p.mu.Unlock()
	select {
	case <-granted:
		return release, nil
	case <-ctx.Done():
		p.mu.Lock()
		i := slices.Index(*queue, granted)
		if i >= 0 {
			*queue = slices.Delete(*queue, i, i+1)
		}
		p.mu.Unlock()
		if i < 0 {
			release() // granted as ctx ended
		}
		return nil, context.Cause(ctx)
	}
}

// take counts a place as held; p.mu is held.
func (p *workerPool) take(upload bool) {
	p.free--
	if upload {
		p.uploads++
	}
}

// release gives a place back and hands the free places to the waiting:
// streams first, then uploads within their share.
func (p *workerPool) release(upload bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free++
	if upload {
		p.uploads--
	}
	for p.free > 0 {
		switch {
		case len(p.streams) > 0:
			p.take(false)
			close(p.streams[0])
			p.streams = p.streams[1:]
		case len(p.queued) > 0 && p.uploads < p.maxUploads:
			p.take(true)
			close(p.queued[0])
			p.queued = p.queued[1:]
		default:
			return
		}
	}
}
