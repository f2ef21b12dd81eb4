package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/ordered"
	"github.com/referee-project/referee/pipeline/videoio"
	"github.com/referee-project/referee/protocol"
)

// encodedFrame is one frame ready for the wire.
type encodedFrame struct {
	number int
	// captured is the frame's capture time: the clock at Read for a
	// camera, the session start plus number/fps for a file.
	captured time.Time
	// data is, in v1, the binary message that follows the "frame" text
	// message; in v2, the whole frame message, header included.
	data []byte
	// size is the length of the encoded picture alone.
	size int
	// err is set on the last value when reading or encoding failed.
	err error
}

// encodeConfig says how frames are read and encoded.
type encodeConfig struct {
	encoding string
	quality  int
	// v2 makes the encoders build whole v2 frame messages.
	v2      bool
	fps     float64
	live    bool
	start   time.Time
	maxTime time.Duration // live capture only; 0 means no limit
	workers int
}

// encoder runs the read and encode stages on an ordered worker pool: the
// source is read on one goroutine, frames are encoded in parallel and
// handed out in frame order. Frames in flight are bounded by the pool's
// lookahead, three per worker, whatever the length of the video.
type encoder struct {
	cfg    encodeConfig
	src    frameSource
	out    chan encodedFrame
	free   chan *bgr.Image
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// rawFrame is one frame read, on its way to an encoder.
type rawFrame struct {
	img      *bgr.Image
	number   int
	captured time.Time
}

// startEncoder starts the stages. first is the frame already read by the
// preflight; src yields the following ones. The caller must call stop
// before closing src.
func startEncoder(ctx context.Context, src frameSource, first bgr.Image, cfg encodeConfig) *encoder {
	cfg.workers = max(cfg.workers, 1)
	lookahead := 3 * cfg.workers
	ctx, cancel := context.WithCancel(ctx)
	e := &encoder{
		cfg:    cfg,
		src:    src,
		out:    make(chan encodedFrame, 1),
		free:   make(chan *bgr.Image, lookahead+2),
		cancel: cancel,
	}
	e.wg.Go(func() {
		defer close(e.out)
		err := ordered.Run(ctx, cfg.workers, lookahead, func(put func(rawFrame) error) error {
			return e.read(first, put)
		}, e.encodeFrame, func(f encodedFrame) error {
			select {
			case e.out <- f:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil && ctx.Err() == nil {
			select {
			case e.out <- encodedFrame{err: err}:
			case <-ctx.Done():
			}
		}
	})
	return e
}

// workersFor is how many encoders an encoding deserves: JPEG and PNG cost
// milliseconds per frame and scale with the CPUs this process may use
// (GOMAXPROCS); raw is a copy.
func workersFor(encoding string) int {
	if encoding == protocol.EncodingRaw {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}

// frames yields the encoded frames in order. After a failed read or encode
// it yields one frame with err set; it is closed after the last frame.
func (e *encoder) frames() <-chan encodedFrame { return e.out }

// stop ends the stages and waits for them; after it the source is no
// longer read.
func (e *encoder) stop() {
	e.cancel()
	e.wg.Wait()
}

// read puts first and then every frame of the source, until its end, the
// time limit of a live capture, or a failure, which it returns.
func (e *encoder) read(first bgr.Image, put func(rawFrame) error) error {
	w, h := first.Width, first.Height
	for n := 0; ; n++ {
		img := &first
		captured := e.cfg.start.Add(time.Duration(float64(n) / e.cfg.fps * float64(time.Second)))
		if n > 0 {
			img = e.buffer()
			err := e.src.Read(img)
			if e.cfg.live {
				captured = time.Now()
			}
			switch {
			case errors.Is(err, io.EOF):
				return nil
			case err != nil:
				//lint:ignore ST1005 the old client's words, which users know and search for
				return fmt.Errorf("Failed to read frame %d: %w", n, err)
			case img.Width != w || img.Height != h:
				//lint:ignore ST1005 the old client's words, which users know and search for
				return fmt.Errorf("Failed to read frame %d: it is %dx%d but the video started at %dx%d", n, img.Width, img.Height, w, h)
			}
		} else if e.cfg.live {
			captured = time.Now()
		}
		if e.cfg.live && e.cfg.maxTime > 0 && n > 0 && time.Since(e.cfg.start) >= e.cfg.maxTime {
			return nil
		}
		if err := put(rawFrame{img: img, number: n, captured: captured}); err != nil {
			return err
		}
	}
}

// buffer returns an image to decode into, recycled when one is free.
func (e *encoder) buffer() *bgr.Image {
	select {
	case img := <-e.free:
		return img
	default:
		return &bgr.Image{}
	}
}

func (e *encoder) recycle(img *bgr.Image) {
	select {
	case e.free <- img:
	default:
	}
}

// encodeFrame is the work of the pool's workers.
func (e *encoder) encodeFrame(f rawFrame, _ *struct{}) (encodedFrame, error) {
	data, size, err := e.encode(*f.img, f.number, f.captured)
	if f.number > 0 {
		// The first frame belongs to the preflight; the others are ours.
		e.recycle(f.img)
	}
	return encodedFrame{number: f.number, captured: f.captured, data: data, size: size}, err
}

// encode compresses img and, for v2, wraps it in its frame header. The
// picture is copied once, into the message the connection sends.
func (e *encoder) encode(img bgr.Image, n int, captured time.Time) ([]byte, int, error) {
	header := func(dst []byte) ([]byte, error) {
		if !e.cfg.v2 {
			return dst, nil
		}
		return protocol.AppendFrame(dst, protocol.FrameHeader{FrameNumber: n, TimestampMicros: captured.UnixMicro(), Encoding: e.cfg.encoding}, nil)
	}
	var payload []byte
	var err error
	switch e.cfg.encoding {
	case protocol.EncodingJPEG:
		payload, err = videoio.EncodeJPEG(img, e.cfg.quality)
	case protocol.EncodingPNG:
		payload, err = videoio.EncodePNG(img)
	case protocol.EncodingRaw:
		// Raw pixels are large: the header goes in front of them in the
		// one buffer they are laid out in.
		msg, err := header(make([]byte, 0, protocol.FrameHeaderSize+protocol.RawHeaderSize+len(img.Pix)))
		if err != nil {
			//lint:ignore ST1005 the old client's words, which users know and search for
			return nil, 0, fmt.Errorf("Failed to encode frame %d: %w", n, err)
		}
		hdr := len(msg)
		msg = protocol.AppendRaw(msg, img.Height, img.Width, 3, img.Pix)
		return msg, len(msg) - hdr, nil
	default:
		err = fmt.Errorf("unknown encoding %q", e.cfg.encoding)
	}
	if err != nil {
		//lint:ignore ST1005 the old client's words, which users know and search for
		return nil, 0, fmt.Errorf("Failed to encode frame %d as %s: %w", n, e.cfg.encoding, err)
	}
	if !e.cfg.v2 {
		return payload, len(payload), nil
	}
	msg, err := header(make([]byte, 0, protocol.FrameHeaderSize+len(payload)))
	if err != nil {
		//lint:ignore ST1005 the old client's words, which users know and search for
		return nil, 0, fmt.Errorf("Failed to encode frame %d: %w", n, err)
	}
	return append(msg, payload...), len(payload), nil
}
