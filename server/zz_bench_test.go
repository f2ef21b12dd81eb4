package server

import (
	"bytes"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/referee-project/referee/protocol"
)

func BenchmarkZZDecode(b *testing.B) {
	for _, sz := range [][2]int{{640, 480}, {1280, 720}, {1920, 1080}} {
		f := newFrames(b, sz[0], sz[1])
		j := f.encode(5, protocol.EncodingJPEG)
		p := f.encode(5, protocol.EncodingPNG)
		b.Run("jpeg", func(b *testing.B) {
			b.SetBytes(int64(len(j)))
			for b.Loop() {
				if _, err := jpeg.Decode(bytes.NewReader(j)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("png", func(b *testing.B) {
			for b.Loop() {
				if _, err := png.Decode(bytes.NewReader(p)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
