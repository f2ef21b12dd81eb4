package server

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"sync/atomic"

	"github.com/referee-project/referee/protocol"
)

// Fixed memory costs the budget counts, besides the bytes of messages read.
const (
	// connBufferBytes is what one WebSocket connection holds whatever it
	// sends: the upgrader's read and write buffers.
	connBufferBytes = 64<<10 + 16<<10
	// minReadBuffer is the first size of a connection's message buffer, and
	// the size it keeps between messages of a connection without a session.
	minReadBuffer = 64 << 10
	// retainReadBuffer is the least a session's connection keeps between
	// messages; it keeps more only for the session's largest legitimate
	// frame (see conn.retainBytes).
	retainReadBuffer = 1 << 20
)

// memBudget counts the RAM the server holds for its clients: every
// connection's buffers and the message being read, every live session's
// spool write buffer, and every frame being decoded. Starts, messages and
// decodes that would pass the limit (Config.MaxMemoryMB) are refused; what
// is already held is counted whatever the limit. GET /streaming/stats
// reports it as total_memory_mb.
type memBudget struct {
	limit int64
	used  atomic.Int64
}

// reserve counts n more bytes, unless that would pass the limit.
func (b *memBudget) reserve(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

// add counts n more bytes, over the limit or not.
func (b *memBudget) add(n int64) { b.used.Add(n) }

// release uncounts n bytes.
func (b *memBudget) release(n int64) { b.used.Add(-n) }

// memoryError is a message or a decode refused at the memory limit.
type memoryError struct {
	what        string
	need        int64
	used, limit int64
}

func (e *memoryError) Error() string {
	return fmt.Sprintf("memory limit reached: %s needs %.1f MB more, the server holds %.1f MB of its %.0f MB (max streaming memory MB); try again when sessions have ended",
		e.what, float64(e.need)/(1<<20), float64(e.used)/(1<<20), float64(e.limit)/(1<<20))
}

// readAll reads the rest of the current message into the connection's
// buffer, but no more than limit+1 bytes: a result longer than limit means
// the message is. The buffer grows as bytes arrive, never past limit+1 and
// by doubling (a 32 MiB frame costs at most 48 MiB while it grows), each
// growth counted in the memory budget; a growth the budget cannot hold
// fails with a *memoryError, the message unread. The result is valid until
// the next read.
func (c *conn) readAll(r io.Reader, limit int64) ([]byte, error) {
	buf := c.buf[:0]
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, nil
			}
			grown := min(max(2*int64(cap(buf)), minReadBuffer), limit+1)
			budget := c.srv.memory
			if !budget.reserve(grown) {
				return nil, &memoryError{what: fmt.Sprintf("a message of more than %d bytes", len(buf)), need: grown, used: budget.used.Load(), limit: budget.limit}
			}
			next := make([]byte, len(buf), grown)
			copy(next, buf)
			budget.release(int64(cap(c.buf)))
			buf, c.buf = next, next
			c.bufBytes.Store(grown)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// retainBytes is the largest message buffer the connection keeps between
// messages: 64 KiB without a session; with one, 1 MiB or, if more, its
// largest legitimate frame (raw, four channels, at the session's size).
func (c *conn) retainBytes() int {
	if c.sess == nil {
		return minReadBuffer
	}
	raw := protocol.RawHeaderSize + 4*c.sess.start.Width*c.sess.start.Height
	return max(retainReadBuffer, raw)
}

// shrinkBuffer drops the message buffer when it is larger than the
// connection keeps, after an outsized message: the next one starts small.
func (c *conn) shrinkBuffer() {
	if cap(c.buf) > c.retainBytes() {
		c.srv.memory.release(int64(cap(c.buf)))
		c.buf = nil
		c.bufBytes.Store(0)
	}
}

// pngDecodeBytes is what decoding a PNG of w x h pixels holds at most: the
// picture at 16 bits a channel with alpha, and the decoder's own state.
func pngDecodeBytes(w, h int) int64 { return 8*int64(w)*int64(h) + 64<<10 }

// decodePNG decodes a PNG frame of w x h pixels in full, so that a frame is
// acknowledged only if it decodes: in one of the server's decode places
// (as many as ProcessingWorkers, so that PNG streams do not take every
// core), its pixels counted in the memory budget while it runs. The error
// says why the frame is refused; ctx ending gives ctx's.
func (srv *Server) decodePNG(ctx context.Context, payload []byte, w, h int) error {
	select {
	case srv.decoders <- struct{}{}:
		defer func() { <-srv.decoders }()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	need := pngDecodeBytes(w, h)
	if !srv.memory.reserve(need) {
		return &memoryError{what: fmt.Sprintf("decoding a %dx%d PNG frame", w, h), need: need, used: srv.memory.used.Load(), limit: srv.memory.limit}
	}
	defer srv.memory.release(need)
	if _, err := png.Decode(bytes.NewReader(payload)); err != nil {
		return fmt.Errorf("not a readable png picture: %w", err)
	}
	return nil
}
