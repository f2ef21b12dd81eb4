package netem

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// echoServer accepts connections on loopback and writes back what it reads
// until the peer half-closes, then half-closes too.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String()
}

func TestRelayDeliversBytesIntactInOrderAfterTheDelay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		size  int
	}{
		{"no delay", 0, 1 << 20},
		{"10ms each way, small", 10 * time.Millisecond, 100},
		{"10ms each way, 4 MiB", 10 * time.Millisecond, 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, c := dialRelay(t, Config{Target: echoServer(t), Delay: tc.delay})
			defer r.Close()
			want := make([]byte, tc.size)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range want {
				want[i] = byte(rng.Uint32())
			}
			start := time.Now()
			writeErr := make(chan error, 1)
			go func() {
				_, err := c.Write(want)
				if err == nil {
					err = c.(*net.TCPConn).CloseWrite()
				}
				writeErr <- err
			}()
			first := make([]byte, 1)
			if _, err := io.ReadFull(c, first); err != nil {
				t.Fatalf("read the first echoed byte: %v", err)
			}
			rtt := time.Since(start)
			rest, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read the echo to EOF: %v", err)
			}
			if err := <-writeErr; err != nil {
				t.Fatalf("write: %v", err)
			}
			got := append(first, rest...)
			if !bytes.Equal(got, want) {
				t.Fatalf("echo through the relay: got %d bytes, want %d, equal prefix %d", len(got), len(want), commonPrefix(got, want))
			}
			// Both directions are delayed: the first byte comes back no
			// sooner than two delays (a small margin for clock
			// granularity).
			if min := 2*tc.delay - time.Millisecond; rtt < min {
				t.Errorf("first byte back after %v, want at least %v", rtt, min)
			}
		})
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// dialRelay starts a relay with cfg and connects to it; the connection
// closes when the test ends and fails any read or write after 20 s.
func dialRelay(t *testing.T, cfg Config) (*Relay, net.Conn) {
	t.Helper()
	r, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return r, c
}

func TestRelayCloseEndsConnectionsAndGoroutines(t *testing.T) {
	r, c := dialRelay(t, Config{Target: echoServer(t), Delay: 5 * time.Millisecond})
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v; want ping", buf, err)
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5 s with a connection open")
	}
	if n, err := c.Read(buf); err == nil {
		t.Errorf("read after Close: %d bytes, want the connection closed", n)
	}
	if _, err := net.DialTimeout("tcp", r.Addr(), time.Second); err == nil {
		t.Error("the relay still accepts connections after Close")
	}
}

func TestRelayClosesTheClientWhenTheTargetIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	r, c := dialRelay(t, Config{Target: target})
	defer r.Close()
	var buf [1]byte
	if _, err := c.Read(buf[:]); !errors.Is(err, io.EOF) {
		t.Errorf("read from a relay whose target is down: %v, want EOF", err)
	}
}

func TestListenRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "netem: no target address to relay to"},
		{Config{Target: "127.0.0.1:1", Delay: -time.Millisecond}, "netem: delay -1ms: want 0 or more"},
		{Config{Target: "127.0.0.1:1", Listen: "127.0.0.1:-1"}, "netem: listen on 127.0.0.1:-1: "},
	} {
		r, err := Listen(tc.cfg)
		if err == nil {
			r.Close()
			t.Errorf("Listen(%+v): no error, want %q", tc.cfg, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Listen(%+v): %q, want it to start with %q", tc.cfg, err, tc.want)
		}
	}
}
