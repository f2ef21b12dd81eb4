package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/referee-project/referee/protocol"
)

// floodClient is one connection of the flood test. It reports errors
// instead of failing the test, since it runs in its own goroutine.
type floodClient struct {
	ws *websocket.Conn
}

func (c *floodClient) send(m protocol.Message) error {
	data, err := protocol.Encode(m)
	if err != nil {
		return err
	}
	c.ws.SetWriteDeadline(time.Now().Add(20 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

func (c *floodClient) sendBinary(b []byte) error {
	c.ws.SetWriteDeadline(time.Now().Add(20 * time.Second))
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

func (c *floodClient) recv() (protocol.Message, error) {
	c.ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	return protocol.Decode(data)
}

// stream sends frames, session_end and the signal of an admitted session
// and waits for its result.
func (c *floodClient) stream(id string, frames [][]byte, sig []byte) error {
	for n, payload := range frames {
		if err := c.send(protocol.Frame{SessionID: id, FrameNumber: n, Encoding: protocol.EncodingJPEG, Size: len(payload)}); err != nil {
			return err
		}
		if err := c.sendBinary(payload); err != nil {
			return err
		}
	}
	if err := c.send(protocol.SessionEnd{SessionID: id, TotalFrames: len(frames)}); err != nil {
		return err
	}
	if err := c.send(protocol.Signal{SessionID: id, Filename: "phrase.txt", Size: len(sig)}); err != nil {
		return err
	}
	if err := c.sendBinary(sig); err != nil {
		return err
	}
	for {
		m, err := c.recv()
		if err != nil {
			return fmt.Errorf("session %s: %w before the result", id, err)
		}
		switch m := m.(type) {
		case protocol.ProcessComplete:
			var res struct {
				Frames int `json:"frames"`
			}
			var r struct {
				Video json.RawMessage `json:"video"`
			}
			if err := json.Unmarshal(m.Result, &r); err != nil || json.Unmarshal(r.Video, &res) != nil || res.Frames != len(frames) {
				return fmt.Errorf("session %s: result %s, want a video of %d frames", id, m.Result, len(frames))
			}
			return nil
		case protocol.Error:
			return fmt.Errorf("session %s: error %s %s", id, m.ErrorCode, m.ErrorMessage)
		}
	}
}

// TestFlood opens 100 connections at once against a limit of 5 sessions:
// exactly 5 are admitted and complete, the 95 others are refused with
// SESSION_START_FAILED and a close frame, /health answers throughout, no
// spool or goroutine is left behind.
func TestFlood(t *testing.T) {
	const clients, limit = 100, 5
	ts := startServer(t, func(c *Config) { c.MaxSessions = limit; c.MaxConnsPerAddr = 2 * clients })
	f := newFrames(t, testWidth, testHeight)
	frames := [][]byte{f.jpeg(0), f.jpeg(1), f.jpeg(2)}
	sig := readPhrase(t, logSingleLeft)

	// Memory must stay bounded by the session limit, not grow with the
	// connections refused: the heap (server and test clients together) is
	// sampled during the flood against a wide margin over the baseline.
	const heapMargin = 128 << 20
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapInuse
	var peakHeap atomic.Uint64
	var sampleMu sync.Mutex
	samplePeak := func() {
		sampleMu.Lock()
		defer sampleMu.Unlock()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakHeap.Store(max(peakHeap.Load(), ms.HeapInuse))
	}

	stop := make(chan struct{})
	var healthChecks, healthFailures atomic.Int32
	var healthWG sync.WaitGroup
	healthWG.Add(1)
	go func() {
		defer healthWG.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			samplePeak()
			resp, err := ts.http.Get(ts.base + PathHealth)
			healthChecks.Add(1)
			if err != nil || resp.StatusCode != http.StatusOK {
				healthFailures.Add(1)
			}
			if err == nil {
				resp.Body.Close()
			}
		}
	}()

	var answered, done sync.WaitGroup
	answered.Add(clients)
	done.Add(clients)
	var admitted, refused atomic.Int32
	errs := make(chan error, clients)
	for i := range clients {
		go func() {
			defer done.Done()
			once := sync.OnceFunc(answered.Done)
			defer once()
			ws, resp, err := ts.dialer.Dial(ts.url, nil)
			if err != nil {
				errs <- fmt.Errorf("client %d: dial: %w", i, err)
				return
			}
			resp.Body.Close()
			defer ws.Close()
			c := &floodClient{ws: ws}
			id := fmt.Sprintf("flood-%03d", i)
			if err := c.send(startMessage(id)); err != nil {
				errs <- err
				return
			}
			m, err := c.recv()
			once() // every client holds its slot until all have their answer
			answered.Wait()
			if i == 0 {
				samplePeak() // every connection is open and answered now
			}
			switch m := m.(type) {
			case protocol.SessionStarted:
				admitted.Add(1)
				if err := c.stream(id, frames, sig); err != nil {
					errs <- err
				}
			case protocol.Error:
				refused.Add(1)
				_, err := c.recv()
				var ce *websocket.CloseError
				if m.ErrorCode != protocol.CodeSessionStartFailed || m.Recoverable || !bytes.Contains([]byte(m.ErrorMessage), []byte("session limit reached: 5 of 5")) ||
					!errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
					errs <- fmt.Errorf("client %d refused with %+v, then %v; want SESSION_START_FAILED and a close frame", i, m, err)
				}
			default:
				errs <- fmt.Errorf("client %d: %T %+v, %v", i, m, m, err)
			}
		}()
	}
	done.Wait()
	close(stop)
	healthWG.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if admitted.Load() != limit || refused.Load() != clients-limit {
		t.Errorf("%d admitted and %d refused, want %d and %d", admitted.Load(), refused.Load(), limit, clients-limit)
	}
	if healthChecks.Load() == 0 || healthFailures.Load() != 0 {
		t.Errorf("/health failed %d of %d times during the flood", healthFailures.Load(), healthChecks.Load())
	}
	if peak := peakHeap.Load(); peak > baseline+heapMargin {
		t.Errorf("heap in use peaked at %d MB during the flood, baseline %d MB: memory is not bounded by the session limit", peak>>20, baseline>>20)
	}
	ts.waitIdle()
	checkNoPartialArtifacts(t, ts.cfg)
	if entries, _ := os.ReadDir(filepath.Join(ts.cfg.OutputDir)); len(entries) != limit {
		t.Errorf("%d artifact directories, want %d", len(entries), limit)
	}
	ts.checkServing()
}
