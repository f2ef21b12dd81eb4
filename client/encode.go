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

// encoder runs the read and encode stages: a reader goroutine feeds workers
// that encode in parallel, and an orderer hands the results out in frame
// order. Frames in flight are bounded by the channel capacities, about
// three per worker, whatever the length of the video.
type encoder struct {
	cfg    encodeConfig
	src    frameSource
	out    chan encodedFrame
	free   chan *bgr.Image
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// job is one frame between the reader and the orderer; done is closed when
// a worker has filled res.
type job struct {
	img  *bgr.Image
	res  encodedFrame
	done chan struct{}
}

// startEncoder starts the stages. first is the frame already read by the
// preflight; src yields the following ones. The caller must call stop
// before closing src.
func startEncoder(ctx context.Context, src frameSource, first bgr.Image, cfg encodeConfig) *encoder {
	if cfg.workers <= 0 {
		cfg.workers = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &encoder{
		cfg:    cfg,
		src:    src,
		out:    make(chan encodedFrame, 1),
		free:   make(chan *bgr.Image, 3*cfg.workers+2),
		cancel: cancel,
	}
	work := make(chan *job, cfg.workers)
	ordered := make(chan *job, 2*cfg.workers)
	e.wg.Add(2 + cfg.workers)
	go e.read(ctx, first, work, ordered)
	for range cfg.workers {
		go e.encodeLoop(work)
	}
	go e.order(ctx, ordered)
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

func (e *encoder) read(ctx context.Context, first bgr.Image, work, ordered chan<- *job) {
	defer e.wg.Done()
	defer close(work)
	defer close(ordered)
	w, h := first.Width, first.Height
	for n := 0; ; n++ {
		img := &first
		var err error
		captured := e.cfg.start.Add(time.Duration(float64(n) / e.cfg.fps * float64(time.Second)))
		if n > 0 {
			img = e.buffer()
			err = e.src.Read(img)
			if e.cfg.live {
				captured = time.Now()
			}
			switch {
			case errors.Is(err, io.EOF):
				return
			case err != nil:
				//lint:ignore ST1005 the old client's words, which users know and search for
				err = fmt.Errorf("Failed to read frame %d: %w", n, err)
			case img.Width != w || img.Height != h:
				//lint:ignore ST1005 the old client's words, which users know and search for
				err = fmt.Errorf("Failed to read frame %d: it is %dx%d but the video started at %dx%d", n, img.Width, img.Height, w, h)
			}
		} else if e.cfg.live {
			captured = time.Now()
		}
		if e.cfg.live && e.cfg.maxTime > 0 && n > 0 && time.Since(e.cfg.start) >= e.cfg.maxTime {
			return
		}
		j := &job{img: img, res: encodedFrame{number: n, captured: captured, err: err}, done: make(chan struct{})}
		if err != nil {
			close(j.done)
		}
		select {
		case ordered <- j:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
		select {
		case work <- j:
		case <-ctx.Done():
			return
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

func (e *encoder) encodeLoop(work <-chan *job) {
	defer e.wg.Done()
	for j := range work {
		j.res.data, j.res.size, j.res.err = e.encode(*j.img, j.res.number, j.res.captured)
		if j.res.number > 0 {
			// The first frame belongs to the preflight; the others are ours.
			e.recycle(j.img)
		}
		j.img = nil
		close(j.done)
	}
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

// order hands the results out in frame order, each as soon as its worker
// is done.
func (e *encoder) order(ctx context.Context, ordered <-chan *job) {
	defer e.wg.Done()
	defer close(e.out)
	for j := range ordered {
		select {
		case <-j.done:
		case <-ctx.Done():
			return
		}
		select {
		case e.out <- j.res:
		case <-ctx.Done():
			return
		}
		if j.res.err != nil {
			return
		}
	}
}
