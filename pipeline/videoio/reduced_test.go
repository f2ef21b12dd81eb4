package videoio

import (
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
)

func TestDecodeReducedShrinksInTheDecoder(t *testing.T) {
	sc := synth.Scenarios()[0]
	img := bgr.New(1280, 720)
	sc.Render(img, 1)
	data, err := EncodeJPEG(img, 90)
	if err != nil {
		t.Fatal(err)
	}
	var full, want bgr.Image
	if err := Decode(data, &full); err != nil {
		t.Fatal(err)
	}
	for _, f := range []int{1, 2, 4, 8} {
		var got bgr.Image
		if err := DecodeReduced(data, f, &got); err != nil {
			t.Fatalf("factor %d: %v", f, err)
		}
		if got.Width != 1280/f || got.Height != 720/f || !got.Valid() {
			t.Fatalf("factor %d: %dx%d, want %dx%d", f, got.Width, got.Height, 1280/f, 720/f)
		}
		// The picture must be the frame shrunk, not a crop or garbage:
		// compare with an area resize of the full decode.
		Resize(full, got.Width, got.Height, &want)
		sum := 0
		for i := range got.Pix {
			d := int(got.Pix[i]) - int(want.Pix[i])
			sum += d * d
		}
		if mse := float64(sum) / float64(len(got.Pix)); mse > 60 {
			t.Errorf("factor %d: mean squared difference %.1f from the resized frame, want < 60", f, mse)
		}
	}
}

func TestDecodeReducedRejectsBadInput(t *testing.T) {
	var dst bgr.Image
	for _, c := range []struct {
		data   []byte
		factor int
		want   string
	}{
		{[]byte{1, 2, 3}, 3, "decode picture: reduction factor 3 is not 1, 2, 4 or 8"},
		{nil, 2, "decode picture: no data (0 bytes)"},
		{[]byte("not a picture"), 2, "decode picture: 13 bytes are not a JPEG or PNG picture OpenCV can read"},
	} {
		err := DecodeReduced(c.data, c.factor, &dst)
		if err == nil || err.Error() != c.want {
			t.Errorf("DecodeReduced(%q, %d) = %v, want %q", c.data, c.factor, err, c.want)
		}
		if dst.Pix != nil {
			t.Errorf("DecodeReduced(%q, %d) changed dst on error", c.data, c.factor)
		}
	}
}
