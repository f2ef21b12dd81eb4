// Package netem emulates a slow network link on loopback: a TCP relay that
// forwards every connection it accepts to a target address and delays the
// bytes of each direction by a fixed time, as a long link does, without
// limiting bandwidth.
//
// On loopback a round trip costs microseconds, so a protocol that waits for
// an answer per message looks as fast as one that does not. Through a Relay
// with a one-way delay of RTT/2 each such wait costs a real link's round
// trip. The relay preserves the order of the bytes, buffers what is in
// flight and passes half-closes (EOF) on once the bytes before them have
// been delivered.
package netem

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Defaults of Config.
const (
	// DefaultIdleTimeout ends a relayed connection on which neither side
	// has sent anything for this long.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultWriteTimeout bounds each write to a peer.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMaxInFlight is how many bytes one direction may hold while
	// they wait out their delay; beyond it the relay stops reading, and the
	// sender's TCP flow control pushes back.
	DefaultMaxInFlight = 64 << 20
)

// readSize is the most one read takes from a peer: one chunk of the queue.
const readSize = 64 << 10

// Config says where a Relay listens, where it forwards to and how slow it
// is. Zero fields take their defaults.
type Config struct {
	// Listen is the address to listen on; default "127.0.0.1:0".
	Listen string
	// Target is the address every accepted connection is forwarded to.
	Target string
	// Delay is the one-way delay of each direction: a round trip through
	// the relay takes at least 2*Delay. Zero relays without delay.
	Delay time.Duration
	// IdleTimeout, WriteTimeout and MaxInFlight: see the defaults.
	IdleTimeout  time.Duration
	WriteTimeout time.Duration
	MaxInFlight  int
}

// Relay is a running delaying relay. Close stops it.
type Relay struct {
	cfg Config
	ln  net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen starts a Relay. It returns once the relay listens; connections are
// accepted and relayed in goroutines the Relay owns until Close.
func Listen(cfg Config) (*Relay, error) {
	if cfg.Target == "" {
		return nil, errors.New("netem: no target address to relay to")
	}
	if cfg.Delay < 0 {
		return nil, fmt.Errorf("netem: delay %v: want 0 or more", cfg.Delay)
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("netem: listen on %s: %w", cfg.Listen, err)
	}
	r := &Relay{cfg: cfg, ln: ln, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is the address the relay listens on, with the real port.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Close stops accepting, drops every relayed connection (bytes still in
// flight are lost, as on a link that goes down) and waits for the relay's
// goroutines to end.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// track registers c to be closed by Close; it reports false, having closed
// c, when the relay is already closed.
func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		down, err := r.ln.Accept()
		if err != nil {
			// The listener fails only when Close closed it, or for good.
			return
		}
		if !r.track(down) {
			return
		}
		r.wg.Add(1)
		go r.relay(down)
	}
}

// relay connects down (the accepted side) to the target and runs both
// directions until both have ended.
func (r *Relay) relay(down net.Conn) {
	defer r.wg.Done()
	defer r.untrack(down)
	up, err := net.DialTimeout("tcp", r.cfg.Target, r.cfg.WriteTimeout)
	if err != nil {
		// The client sees its connection closed, as when the far end
		// refuses it.
		return
	}
	if !r.track(up) {
		return
	}
	defer r.untrack(up)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.pipe(up, down)
	}()
	go func() {
		defer wg.Done()
		r.pipe(down, up)
	}()
	wg.Wait()
}

// chunk is what one read took from a peer, and when it may be passed on.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk Delay after it was read. A reader
// goroutine queues the chunks; this goroutine writes them when due. When
// the copy fails in either direction both connections are closed, so the
// other pipe of the pair ends too.
func (r *Relay) pipe(dst, src net.Conn) {
	q := newQueue(r.cfg.MaxInFlight)
	done := make(chan struct{})
	defer func() {
		q.close()
		<-done
	}()
	go func() {
		defer close(done)
		r.read(src, q)
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c, ok := q.pop()
		if !ok {
			// The reader ended: pass a clean EOF on, else drop both.
			if q.eof() {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
					return
				}
			}
			src.Close()
			dst.Close()
			return
		}
		if wait := time.Until(c.due); wait > 0 {
			timer.Reset(wait)
			<-timer.C
		}
		if err := dst.SetWriteDeadline(time.Now().Add(r.cfg.WriteTimeout)); err != nil {
			src.Close()
			dst.Close()
			return
		}
		if _, err := dst.Write(c.data); err != nil {
			src.Close()
			dst.Close()
			return
		}
		q.release(len(c.data))
	}
}

// read queues what src sends until it ends; a clean EOF is remembered so
// that the writer passes it on.
func (r *Relay) read(src net.Conn, q *queue) {
	buf := make([]byte, readSize)
	for {
		if err := src.SetReadDeadline(time.Now().Add(r.cfg.IdleTimeout)); err != nil {
			q.finish(false)
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			data := make([]byte, n)
			copy(data, buf[:n])
			if !q.push(chunk{data: data, due: time.Now().Add(r.cfg.Delay)}) {
				return
			}
		}
		if err != nil {
			q.finish(errors.Is(err, io.EOF))
			return
		}
	}
}

// queue is the FIFO of one direction, bounded in bytes. The delay is the
// same for every chunk, so FIFO order is also the order of the due times.
type queue struct {
	mu       sync.Mutex
	cond     *sync.Cond
	chunks   []chunk
	bytes    int
	max      int
	ended    bool // no more pushes
	cleanEOF bool
	closed   bool // the writer gave up: pushes fail
}

func newQueue(max int) *queue {
	q := &queue{max: max}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// push appends c, waiting while the queue holds max bytes; it reports
// false when the writer has gone.
func (q *queue) push(c chunk) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.bytes >= q.max && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return false
	}
	q.chunks = append(q.chunks, c)
	q.bytes += len(c.data)
	q.cond.Broadcast()
	return true
}

// pop removes the oldest chunk, waiting for one; it reports false once the
// reader has ended and everything queued was taken.
func (q *queue) pop() (chunk, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.chunks) == 0 && !q.ended && !q.closed {
		q.cond.Wait()
	}
	if len(q.chunks) == 0 {
		return chunk{}, false
	}
	c := q.chunks[0]
	q.chunks[0] = chunk{}
	q.chunks = q.chunks[1:]
	return c, true
}

// release returns n written bytes to the budget.
func (q *queue) release(n int) {
	q.mu.Lock()
	q.bytes -= n
	q.cond.Broadcast()
	q.mu.Unlock()
}

// finish marks the end of the reader; clean says it ended with EOF.
func (q *queue) finish(clean bool) {
	q.mu.Lock()
	q.ended, q.cleanEOF = true, clean
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *queue) eof() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cleanEOF
}

// close makes pushes fail, so that a reader blocked on a full queue ends.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}
