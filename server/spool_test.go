package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/protocol"
)

// testBudget is a disk budget no test reaches.
func testBudget() *diskBudget { return &diskBudget{limit: 1 << 40} }

// payloadFor is a distinct payload of frame n.
func payloadFor(n, size int) []byte {
	b := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestSpoolEachInOrderOnce(t *testing.T) {
	sp, err := createSpool(filepath.Join(t.TempDir(), "frames.spool"), testBudget())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	arrivals := []struct {
		n   int
		dup bool
	}{{3, false}, {0, false}, {1, false}, {3, true}, {7, false}, {2, false}, {0, true}, {5, false}}
	encodings := []string{protocol.EncodingJPEG, protocol.EncodingPNG, protocol.EncodingRaw}
	for _, a := range arrivals {
		dup, err := sp.Append(a.n, encodings[a.n%3], payloadFor(a.n, 1000+a.n))
		if err != nil {
			t.Fatal(err)
		}
		if dup != a.dup {
			t.Errorf("Append(%d): duplicate %v, want %v", a.n, dup, a.dup)
		}
	}
	if sp.Count() != 6 {
		t.Errorf("Count %d, want 6", sp.Count())
	}
	if got := sp.Buffered(); got != int(sp.Size()) || got == 0 {
		t.Errorf("Buffered %d before the first flush, want all %d bytes", got, sp.Size())
	}
	var got []int
	err = sp.Each(context.Background(), func(f pipeline.EncodedFrame) error {
		got = append(got, f.Number)
		if f.Encoding != encodings[f.Number%3] || !bytes.Equal(f.Data, payloadFor(f.Number, 1000+f.Number)) {
			t.Errorf("frame %d: encoding %s, %d bytes: not what was appended", f.Number, f.Encoding, len(f.Data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 2, 3, 5, 7}; !slices.Equal(got, want) {
		t.Errorf("Each yielded %v, want %v", got, want)
	}
	if sp.Buffered() != 0 {
		t.Errorf("Buffered %d after Each, want 0", sp.Buffered())
	}
	info, err := os.Stat(sp.path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != sp.Size() {
		t.Errorf("spool file %d bytes, Size %d", info.Size(), sp.Size())
	}
}

func TestSpoolEachStops(t *testing.T) {
	sp, err := createSpool(filepath.Join(t.TempDir(), "frames.spool"), testBudget())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for n := range 5 {
		if _, err := sp.Append(n, protocol.EncodingJPEG, payloadFor(n, 100)); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err = sp.Each(context.Background(), func(f pipeline.EncodedFrame) error {
		calls++
		if f.Number == 1 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("Each returned %v after %d calls, want the callback's error after 2", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sp.Each(ctx, func(pipeline.EncodedFrame) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Each with a cancelled context returned %v", err)
	}
}

func TestSpoolDetectsCorruption(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(data []byte)
		want    string
	}{
		{"payload byte flipped", func(d []byte) { d[spoolHeaderSize+10] ^= 0xff }, "checksum mismatch"},
		{"magic overwritten", func(d []byte) { d[0] = 'X' }, "no record magic"},
		{"frame number changed", func(d []byte) { d[4] = 9 }, "record holds frame 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "frames.spool")
			sp, err := createSpool(path, testBudget())
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			if _, err := sp.Append(0, protocol.EncodingJPEG, payloadFor(0, 100)); err != nil {
				t.Fatal(err)
			}
			if err := sp.Each(context.Background(), func(pipeline.EncodedFrame) error { return nil }); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.corrupt(data)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			err = sp.Each(context.Background(), func(pipeline.EncodedFrame) error {
				t.Error("a corrupt frame was yielded")
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Each returned %v, want an error holding %q", err, tc.want)
			}
		})
	}
}

func TestSpoolRefuses(t *testing.T) {
	sp, err := createSpool(filepath.Join(t.TempDir(), "frames.spool"), testBudget())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n        int
		encoding string
		want     string
	}{
		{-1, protocol.EncodingJPEG, "number out of range"},
		{1 << 33, protocol.EncodingJPEG, "number out of range"},
		{0, "gif", `unknown encoding "gif"`},
	} {
		if _, err := sp.Append(tc.n, tc.encoding, []byte{1}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Append(%d, %q) returned %v, want %q", tc.n, tc.encoding, err, tc.want)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Append(0, protocol.EncodingJPEG, []byte{1}); !errors.Is(err, errSpoolClosed) {
		t.Errorf("Append after Close returned %v", err)
	}
	if err := sp.Each(context.Background(), func(pipeline.EncodedFrame) error { return nil }); !errors.Is(err, errSpoolClosed) {
		t.Errorf("Each after Close returned %v", err)
	}
	if err := sp.Park(); err != nil {
		t.Errorf("Park after Close returned %v, want nil: a closed spool has nothing to park", err)
	}
	if sp.Buffered() != 0 {
		t.Errorf("Buffered %d after Close", sp.Buffered())
	}
}

// BenchmarkSpoolAppend appends JPEG-sized payloads of 640x480 frames (about
// 60 KB at quality 85).
func BenchmarkSpoolAppend(b *testing.B) {
	for _, size := range []int{30 << 10, 60 << 10, 120 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			sp, err := createSpool(filepath.Join(b.TempDir(), "frames.spool"), testBudget())
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close()
			payload := payloadFor(0, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := range b.N {
				if _, err := sp.Append(i, protocol.EncodingJPEG, payload); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := sp.Each(context.Background(), func(pipeline.EncodedFrame) error { return nil }); err != nil {
				b.Fatal(err)
			}
		})
	}
}
