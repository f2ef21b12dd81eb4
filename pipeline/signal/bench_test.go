package signal

import "testing"

// BenchmarkParse measures reading a typical real log (about 1 KiB).
func BenchmarkParse(b *testing.B) {
	data := readSample(b, sampleDouble)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
