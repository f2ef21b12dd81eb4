// Package mjpegtest serves JPEG frames as an IP camera does, MJPEG over
// HTTP (multipart/x-mixed-replace), for tests of live network sources.
package mjpegtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"
)

// Boundary separates the parts of the stream.
const Boundary = "refereeframe"

// Camera is a running MJPEG source on a loopback port.
type Camera struct {
	// URL is the stream's address, http://127.0.0.1:PORT/video.mjpg.
	URL string
	srv *httptest.Server
}

// Start serves frames (JPEG pictures) at fps to each client that connects,
// from the first, and ends each response after the last one: a camera that
// stops. Close stops it; every handler returns when its client goes or the
// camera is closed.
func Start(frames [][]byte, fps float64) *Camera {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/video.mjpg" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+Boundary)
		rc := http.NewResponseController(w)
		tick := time.NewTicker(time.Duration(float64(time.Second) / fps))
		defer tick.Stop()
		for i, f := range frames {
			if i > 0 {
				select {
				case <-tick.C:
				case <-r.Context().Done():
					return
				}
			}
			// Each write may take at most a second: a client that
			// stops reading does not hold the handler.
			_ = rc.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := fmt.Fprintf(w, "--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", Boundary, len(f)); err != nil {
				return
			}
			if _, err := w.Write(append(f, "\r\n"...)); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}))
	return &Camera{URL: srv.URL + "/video.mjpg", srv: srv}
}

// Close stops the camera and waits for its handlers to return.
func (c *Camera) Close() {
	c.srv.CloseClientConnections()
	c.srv.Close()
}
