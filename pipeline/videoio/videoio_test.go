package videoio

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"sync"
	"testing"

	"gocv.io/x/gocv"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
)

func TestEncodeDecodeJPEGKeepsTheCounter(t *testing.T) {
	for _, sz := range [][2]int{{160, 120}, {320, 240}, {1920, 1080}} {
		img := bgr.New(sz[0], sz[1])
		var back bgr.Image
		for _, i := range []int{0, 1, 4095, 524288, 777777, synth.CounterMax} {
			synth.DrawCounter(img, i)
			data, err := EncodeJPEG(img, 50)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}) {
				t.Fatalf("EncodeJPEG output starts % x, not a JPEG marker", data[:4])
			}
			if err := Decode(data, &back); err != nil {
				t.Fatal(err)
			}
			if back.Width != sz[0] || back.Height != sz[1] || !back.Valid() {
				t.Fatalf("decoded %dx%d valid=%v, want %dx%d", back.Width, back.Height, back.Valid(), sz[0], sz[1])
			}
			if got, err := synth.DecodeCounter(back); err != nil || got != i {
				t.Errorf("%dx%d JPEG q50 of index %d decodes to %d, %v", sz[0], sz[1], i, got, err)
			}
		}
	}
}

func TestJPEGQualityChangesSize(t *testing.T) {
	img := bgr.New(320, 240)
	synth.Scenarios()[0].Render(img, 1)
	synth.AddNoise(img, rand.New(rand.NewPCG(1, 1)), 10)
	low, err := EncodeJPEG(img, 10)
	if err != nil {
		t.Fatal(err)
	}
	high, err := EncodeJPEG(img, 95)
	if err != nil {
		t.Fatal(err)
	}
	if len(low)*2 > len(high) {
		t.Errorf("quality 10 gives %d bytes, quality 95 %d: the quality is not applied", len(low), len(high))
	}
}

func TestPNGRoundTripIsExact(t *testing.T) {
	img := bgr.New(321, 239)
	synth.Noise(img, rand.New(rand.NewPCG(7, 7)))
	data, err := EncodePNG(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("EncodePNG output starts %q", data[:8])
	}
	back := bgr.Image{Pix: make([]byte, 0, 1)}
	if err := Decode(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Width != 321 || back.Height != 239 || !bytes.Equal(back.Pix, img.Pix) {
		t.Errorf("PNG round trip changed the picture (%dx%d)", back.Width, back.Height)
	}
	counter := bgr.New(160, 120)
	synth.DrawCounter(counter, 31337)
	data, err = EncodePNG(counter)
	if err != nil {
		t.Fatal(err)
	}
	if err := Decode(data, &back); err != nil {
		t.Fatal(err)
	}
	if got, err := synth.DecodeCounter(back); err != nil || got != 31337 {
		t.Errorf("PNG counter decodes to %d, %v", got, err)
	}
}

func TestDecodeConvertsGreyToBGR(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 4, 2))
	g.SetGray(1, 1, color.Gray{Y: 200})
	var buf bytes.Buffer
	if err := png.Encode(&buf, g); err != nil {
		t.Fatal(err)
	}
	var dst bgr.Image
	if err := Decode(buf.Bytes(), &dst); err != nil {
		t.Fatal(err)
	}
	if !dst.Valid() || dst.Width != 4 || dst.Height != 2 {
		t.Fatalf("decoded %dx%d valid=%v", dst.Width, dst.Height, dst.Valid())
	}
	if b, gg, r := dst.At(1, 1); b != 200 || gg != 200 || r != 200 {
		t.Errorf("grey 200 decoded as %d,%d,%d", b, gg, r)
	}
}

func TestDecodeReusesThePixelBuffer(t *testing.T) {
	img := bgr.New(64, 48)
	data, err := EncodePNG(img)
	if err != nil {
		t.Fatal(err)
	}
	dst := bgr.Image{Pix: make([]byte, 64*48*3+100)}
	p := &dst.Pix[0]
	if err := Decode(data, &dst); err != nil {
		t.Fatal(err)
	}
	if &dst.Pix[0] != p || len(dst.Pix) != 64*48*3 {
		t.Errorf("Decode reallocated a buffer that was large enough (len %d)", len(dst.Pix))
	}
}

func TestCodecErrors(t *testing.T) {
	valid := bgr.New(8, 8)
	broken := bgr.Image{Width: 8, Height: 8, Pix: make([]byte, 5)}
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"quality below 0", func() error { _, err := EncodeJPEG(valid, -1); return err }, "encode JPEG: quality -1 is outside 0..100"},
		{"quality above 100", func() error { _, err := EncodeJPEG(valid, 101); return err }, "encode JPEG: quality 101 is outside 0..100"},
		{"JPEG of a broken picture", func() error { _, err := EncodeJPEG(broken, 80); return err }, "encode .jpg: picture 8x8 with 5 bytes is not a valid BGR image"},
		{"PNG of an empty picture", func() error { _, err := EncodePNG(bgr.Image{}); return err }, "encode .png: picture 0x0 with 0 bytes is not a valid BGR image"},
		{"decode nothing", func() error { var d bgr.Image; return Decode(nil, &d) }, "decode picture: no data (0 bytes)"},
		{"decode text", func() error { var d bgr.Image; return Decode([]byte("not a picture at all"), &d) }, "decode picture: 20 bytes are not a JPEG or PNG picture OpenCV can read"},
	}
	for _, tt := range tests {
		if err := tt.run(); err == nil || err.Error() != tt.want {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	// A failed Decode leaves dst as it was.
	dst := bgr.New(2, 2)
	dst.Set(0, 0, 1, 2, 3)
	if err := Decode([]byte{0xff, 0xd8, 0xff, 0xe0}, &dst); err == nil {
		t.Error("a 4-byte JPEG header decoded")
	}
	if b, g, r := dst.At(0, 0); dst.Width != 2 || b != 1 || g != 2 || r != 3 {
		t.Error("a failed Decode changed dst")
	}
}

func TestEncodeIsSafeForConcurrentUse(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img := bgr.New(320, 240)
			var back bgr.Image
			for i := range 25 {
				want := g*1000 + i
				synth.DrawCounter(img, want)
				data, err := EncodeJPEG(img, 70)
				if err == nil {
					err = Decode(data, &back)
				}
				if err != nil {
					errs <- err
					return
				}
				if got, err := synth.DecodeCounter(back); err != nil || got != want {
					errs <- errors.New("a concurrent encode mixed up frames")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestResize(t *testing.T) {
	// A 1-pixel checkerboard shrunk by two is an even grey with area
	// interpolation: each target pixel averages a 2x2 block.
	src := bgr.New(64, 48)
	for y := range 48 {
		for x := range 64 {
			if (x+y)%2 == 0 {
				src.Set(x, y, 255, 255, 255)
			}
		}
	}
	var dst bgr.Image
	Resize(src, 32, 24, &dst)
	if dst.Width != 32 || dst.Height != 24 || !dst.Valid() {
		t.Fatalf("resized to %dx%d valid=%v", dst.Width, dst.Height, dst.Valid())
	}
	for y := range 24 {
		for x := range 32 {
			if v := dst.Gray(x, y); v < 126 || v > 129 {
				t.Fatalf("pixel (%d,%d) = %d, want the 2x2 average 127/128", x, y, v)
			}
		}
	}
	// The counter layout is proportional, so a halved counter frame still
	// decodes.
	big := bgr.New(640, 480)
	synth.DrawCounter(big, 9876)
	Resize(big, 320, 240, &dst)
	if got, err := synth.DecodeCounter(dst); err != nil || got != 9876 {
		t.Errorf("halved counter decodes to %d, %v", got, err)
	}
	for _, size := range [][2]int{{0, 10}, {10, -1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Resize to %dx%d did not panic", size[0], size[1])
				}
			}()
			Resize(src, size[0], size[1], &dst)
		}()
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Resize of an invalid picture did not panic")
			}
		}()
		Resize(bgr.Image{}, 10, 10, &dst)
	}()
}

func TestOpenCameraErrors(t *testing.T) {
	if _, err := OpenCamera(-1); !errors.Is(err, ErrCannotOpen) || err.Error() != "camera -1: cannot open video: a camera index is 0 or more" {
		t.Errorf("OpenCamera(-1) = %v", err)
	}
	// No machine running these tests has 64 cameras.
	want := "camera 63: cannot open video: no such camera, or it is busy or not permitted (on Linux check that /dev/video63 exists and is readable)"
	if _, err := OpenCamera(63); !errors.Is(err, ErrCannotOpen) || err.Error() != want {
		t.Errorf("OpenCamera(63) = %v, want %q", err, want)
	}
}

// TestDecodeIgnoresEXIFOrientation: a JPEG tagged "rotate 90°" keeps its
// stored size, since Decode skips the EXIF scan for speed.
func TestDecodeIgnoresEXIFOrientation(t *testing.T) {
	img := bgr.New(320, 240)
	synth.DrawCounter(img, 42)
	plain, err := EncodeJPEG(img, 80)
	if err != nil {
		t.Fatal(err)
	}
	// APP1 Exif segment: little-endian TIFF header, one IFD entry,
	// Orientation (0x0112) SHORT = 6 (rotate 90° clockwise).
	exif := []byte("Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00" +
		"\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00" + "\x00\x00\x00\x00")
	seg := append([]byte{0xff, 0xe1, byte((len(exif) + 2) >> 8), byte(len(exif) + 2)}, exif...)
	tagged := append(append(append([]byte(nil), plain[:2]...), seg...), plain[2:]...)

	// Precondition: OpenCV does read this tag when asked to.
	rotated, err := gocv.IMDecode(tagged, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer rotated.Close()
	if rotated.Cols() != 240 || rotated.Rows() != 320 {
		t.Fatalf("the EXIF tag is not recognised: OpenCV gives %dx%d", rotated.Cols(), rotated.Rows())
	}
	var dst bgr.Image
	if err := Decode(tagged, &dst); err != nil {
		t.Fatal(err)
	}
	if dst.Width != 320 || dst.Height != 240 {
		t.Errorf("Decode gives %dx%d, want the stored 320x240", dst.Width, dst.Height)
	}
	if got, err := synth.DecodeCounter(dst); err != nil || got != 42 {
		t.Errorf("counter reads %d, %v", got, err)
	}
}
