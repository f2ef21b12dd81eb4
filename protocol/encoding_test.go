package protocol

import (
	"slices"
	"testing"
)

func TestEncodingTable(t *testing.T) {
	// The codes are on the wire and in spool files: they never change.
	want := map[string]byte{EncodingJPEG: 1, EncodingPNG: 2, EncodingRaw: 3}
	if got := Encodings(); !slices.Equal(got, []string{EncodingJPEG, EncodingPNG, EncodingRaw}) {
		t.Errorf("Encodings() = %q", got)
	}
	if got := EncodingChoices(); got != "jpeg, png or raw" {
		t.Errorf("EncodingChoices() = %q", got)
	}
	for name, code := range want {
		if c, ok := EncodingCode(name); !ok || c != code {
			t.Errorf("EncodingCode(%q) = %d, %v; want %d", name, c, ok, code)
		}
		if n, ok := EncodingName(code); !ok || n != name {
			t.Errorf("EncodingName(%d) = %q, %v; want %q", code, n, ok, name)
		}
		if !KnownEncoding(name) {
			t.Errorf("KnownEncoding(%q) is false", name)
		}
	}
	for _, name := range []string{"", "JPEG", "bmp", "jpg"} {
		if c, ok := EncodingCode(name); ok || c != 0 || KnownEncoding(name) {
			t.Errorf("EncodingCode(%q) = %d, %v; want 0, false", name, c, ok)
		}
	}
	for _, code := range []byte{0, 4, 255} {
		if n, ok := EncodingName(code); ok || n != "" {
			t.Errorf("EncodingName(%d) = %q, %v; want no encoding", code, n, ok)
		}
	}
}
