package pipeline

import (
	"bytes"
	"context"
	"sync"
)

// conveyor prepares frames on worker goroutines while the caller writes
// earlier ones: add hands a frame to the workers and, once window frames
// are in flight, passes the oldest to emit, so emit sees every frame in the
// order added, on the caller's goroutine. With no workers, add prepares
// and emits each frame at once.
//
// At most window frames are in flight, each holding a copy of its data and
// its prepared form: memory stays bounded whatever the session's length.
type conveyor struct {
	ctx     context.Context
	workers int
	window  int
	prepare func(EncodedFrame) prepared
	emit    func(prepared) error
	jobs    chan conveyorJob
	queue   []chan prepared // results of the frames in flight, oldest first
	stop    context.CancelFunc
	wg      sync.WaitGroup
	closed  bool
}

type conveyorJob struct {
	frame EncodedFrame
	out   chan<- prepared
}

// conveyorWindow is the number of frames in flight with the given number
// of workers: enough that no worker waits while the writer works.
func conveyorWindow(workers int) int { return 2 * workers }

// newConveyor starts workers goroutines; close stops them. Workers skip
// the frames still queued once ctx is done or the conveyor is closed.
func newConveyor(ctx context.Context, workers int, prepare func(EncodedFrame) prepared, emit func(prepared) error) *conveyor {
	ctx, stop := context.WithCancel(ctx)
	c := &conveyor{
		ctx:     ctx,
		workers: workers,
		window:  conveyorWindow(workers),
		prepare: prepare,
		emit:    emit,
		jobs:    make(chan conveyorJob, conveyorWindow(workers)),
		stop:    stop,
	}
	for range workers {
		c.wg.Go(func() {
			for j := range c.jobs {
				if err := c.ctx.Err(); err != nil {
					j.out <- prepared{number: j.frame.Number, err: err}
					continue
				}
				j.out <- c.prepare(j.frame)
			}
		})
	}
	return c
}

// add takes f, whose Data it copies when workers will read it later, and
// emits the oldest frames while window frames are in flight. It returns the
// first error of preparing or emitting a frame, in frame order.
func (c *conveyor) add(f EncodedFrame) error {
	if c.workers == 0 {
		p := c.prepare(f)
		if p.err != nil {
			return p.err
		}
		return c.emit(p)
	}
	f.Data = bytes.Clone(f.Data)
	out := make(chan prepared, 1)
	// Never blocks for long: fewer than window jobs are queued.
	c.jobs <- conveyorJob{frame: f, out: out}
	c.queue = append(c.queue, out)
	for len(c.queue) >= c.window {
		if err := c.emitOldest(); err != nil {
			return err
		}
	}
	return nil
}

// finish emits the frames still in flight, in order, and stops the
// workers.
func (c *conveyor) finish() error {
	defer c.close()
	for len(c.queue) > 0 {
		if err := c.emitOldest(); err != nil {
			return err
		}
	}
	return nil
}

func (c *conveyor) emitOldest() error {
	p := <-c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[1:]
	if p.err != nil {
		return p.err
	}
	return c.emit(p)
}

// close stops the workers, dropping the frames in flight, and waits for
// them to end. Closing twice is harmless.
func (c *conveyor) close() {
	if c.closed {
		return
	}
	c.closed = true
	c.stop()
	close(c.jobs)
	c.wg.Wait()
}
