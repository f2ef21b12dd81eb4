package avi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// node is a chunk, RIFF or LIST of a parsed file.
type node struct {
	id   string
	typ  string // form or list type of a RIFF or LIST
	pos  int64  // offset of the id
	size uint32 // the size field
	data []byte // payload; for a RIFF or LIST, after the type
	kids []*node
}

// parseChunks parses the chunks in data, which starts at file offset base.
func parseChunks(t *testing.T, data []byte, base int64) []*node {
	t.Helper()
	var out []*node
	for off := 0; off < len(data); {
		if len(data)-off < 8 {
			t.Fatalf("offset %d: %d trailing bytes, not a chunk header", base+int64(off), len(data)-off)
		}
		n := &node{id: string(data[off : off+4]), pos: base + int64(off), size: binary.LittleEndian.Uint32(data[off+4:])}
		end := off + 8 + int(n.size)
		if end > len(data) {
			t.Fatalf("chunk %q at %d: size %d runs past its parent's end", n.id, n.pos, n.size)
		}
		payload := data[off+8 : end]
		if n.id == "RIFF" || n.id == "LIST" {
			n.typ = string(payload[:4])
			n.data = payload[4:]
			n.kids = parseChunks(t, n.data, n.pos+12)
		} else {
			n.data = payload
		}
		out = append(out, n)
		off = end + int(n.size%2)
	}
	return out
}

func (n *node) find(id, typ string) *node {
	for _, k := range n.kids {
		if k.id == id && k.typ == typ {
			return k
		}
	}
	return nil
}

func (n *node) must(t *testing.T, id, typ string) *node {
	t.Helper()
	k := n.find(id, typ)
	if k == nil {
		t.Fatalf("%s %q at %d has no %s %q", n.id, n.typ, n.pos, id, typ)
	}
	return k
}

func u32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }

// fakeJPEG returns n bytes that start with the JPEG start-of-image marker
// and whose content identifies frame i.
func fakeJPEG(i, n int) []byte {
	b := make([]byte, n)
	b[0], b[1] = 0xFF, 0xD8
	for k := 2; k < n; k++ {
		b[k] = byte(i*7 + k)
	}
	return b
}

// writeFile writes frames through a Writer with the given RIFF limit and
// returns the file's path and bytes.
func writeFile(t *testing.T, cfg Config, limit int64, frames [][]byte) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.avi")
	w, err := Create(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if limit != 0 {
		w.limit = limit
	}
	for i, f := range frames {
		if err := w.WriteFrame(f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if got := w.Frames(); got != len(frames) {
		t.Errorf("Frames() = %d, want %d", got, len(frames))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

// checkHeaders checks the hdrl list of a file holding total frames, first
// of them in its first RIFF, and returns the strl list.
func checkHeaders(t *testing.T, riff *node, cfg Config, total, first, maxFrame int, rate, scale uint32) *node {
	t.Helper()
	hdrl := riff.must(t, "LIST", "hdrl")
	avih := hdrl.must(t, "avih", "")
	wantAvih := []struct {
		name string
		off  int
		want uint32
	}{
		{"dwMicroSecPerFrame", 0, uint32(1e6/cfg.FPS + 0.5)},
		{"dwFlags", 12, avifHasIndex},
		{"dwTotalFrames", 16, uint32(first)},
		{"dwStreams", 24, 1},
		{"dwSuggestedBufferSize", 28, uint32(maxFrame)},
		{"dwWidth", 32, uint32(cfg.Width)},
		{"dwHeight", 36, uint32(cfg.Height)},
	}
	if len(avih.data) != avihSize {
		t.Fatalf("avih is %d bytes, want %d", len(avih.data), avihSize)
	}
	for _, f := range wantAvih {
		if got := u32(avih.data, f.off); got != f.want {
			t.Errorf("avih %s = %d, want %d", f.name, got, f.want)
		}
	}
	strl := hdrl.must(t, "LIST", "strl")
	strh := strl.must(t, "strh", "")
	if got := string(strh.data[0:8]); got != "vidsMJPG" {
		t.Errorf("strh fccType+fccHandler = %q, want %q", got, "vidsMJPG")
	}
	wantStrh := []struct {
		name string
		off  int
		want uint32
	}{
		{"dwScale", 20, scale},
		{"dwRate", 24, rate},
		{"dwLength", 32, uint32(total)},
		{"dwSuggestedBufferSize", 36, uint32(maxFrame)},
	}
	for _, f := range wantStrh {
		if got := u32(strh.data, f.off); got != f.want {
			t.Errorf("strh %s = %d, want %d", f.name, got, f.want)
		}
	}
	strf := strl.must(t, "strf", "")
	if len(strf.data) != strfSize || u32(strf.data, 0) != strfSize {
		t.Errorf("strf is %d bytes with biSize %d, want %d", len(strf.data), u32(strf.data, 0), strfSize)
	}
	if w, h, c := u32(strf.data, 4), u32(strf.data, 8), string(strf.data[16:20]); w != uint32(cfg.Width) || h != uint32(cfg.Height) || c != "MJPG" {
		t.Errorf("strf = %dx%d %q, want %dx%d \"MJPG\"", w, h, c, cfg.Width, cfg.Height)
	}
	return strl
}

// checkIdx1 checks that idx1 lists exactly frames, in order, each entry
// pointing at its 00dc chunk relative to the movi list's 'movi' code.
func checkIdx1(t *testing.T, file []byte, riff *node, frames [][]byte) {
	t.Helper()
	movi := riff.must(t, "LIST", "movi")
	idx1 := riff.must(t, "idx1", "")
	if len(idx1.data) != idx1Entry*len(frames) {
		t.Fatalf("idx1 has %d bytes, want %d entries of %d", len(idx1.data), len(frames), idx1Entry)
	}
	base := movi.pos + 8
	for i, f := range frames {
		e := idx1.data[i*idx1Entry:]
		id, flags, off, size := string(e[:4]), u32(e, 4), int64(u32(e, 8)), u32(e, 12)
		if id != "00dc" || flags != aviifKeyframe || size != uint32(len(f)) {
			t.Fatalf("idx1 entry %d = %q flags %#x size %d, want \"00dc\" %#x %d", i, id, flags, size, aviifKeyframe, len(f))
		}
		at := base + off
		if got := string(file[at : at+4]); got != "00dc" || u32(file, int(at+4)) != size {
			t.Fatalf("idx1 entry %d: offset %d points at %q, not its 00dc chunk", i, off, got)
		}
		if !bytes.Equal(file[at+8:at+8+int64(size)], f) {
			t.Fatalf("idx1 entry %d: chunk at offset %d holds other bytes than frame %d", i, off, i)
		}
	}
}

func TestStructure(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		sizes       []int
		rate, scale uint32
	}{
		{"one frame", Config{Width: 640, Height: 480, FPS: 30}, []int{1000}, 30, 1},
		{"odd sizes are padded", Config{Width: 320, Height: 240, FPS: 15}, []int{101, 2, 3, 4000, 57}, 15, 1},
		{"NTSC rate", Config{Width: 1280, Height: 720, FPS: 30000.0 / 1001}, []int{500, 501, 502}, 30000, 1001},
		{"fractional rate", Config{Width: 16, Height: 16, FPS: 12.5}, []int{10, 11}, 25, 2},
		{"no frames", Config{Width: 64, Height: 48, FPS: 25}, nil, 25, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frames := make([][]byte, len(tc.sizes))
			maxFrame := 0
			for i, n := range tc.sizes {
				frames[i] = fakeJPEG(i, n)
				maxFrame = max(maxFrame, n)
			}
			_, file := writeFile(t, tc.cfg, 0, frames)
			top := parseChunks(t, file, 0)
			if len(top) != 1 || top[0].id != "RIFF" || top[0].typ != "AVI " {
				t.Fatalf("file holds %d top-level chunks, want one RIFF 'AVI '", len(top))
			}
			riff := top[0]
			if int(riff.size) != len(file)-8 {
				t.Errorf("RIFF size %d, want file size - 8 = %d", riff.size, len(file)-8)
			}
			strl := checkHeaders(t, riff, tc.cfg, len(frames), len(frames), maxFrame, tc.rate, tc.scale)
			if strl.find("indx", "") != nil || riff.must(t, "LIST", "hdrl").find("LIST", "odml") != nil {
				t.Error("a file of one RIFF has OpenDML headers; they should still be JUNK")
			}
			movi := riff.must(t, "LIST", "movi")
			if len(movi.kids) != len(frames) {
				t.Fatalf("movi holds %d chunks, want %d", len(movi.kids), len(frames))
			}
			for i, k := range movi.kids {
				if k.id != "00dc" || !bytes.Equal(k.data, frames[i]) {
					t.Fatalf("movi chunk %d is %q with %d bytes, want 00dc with frame %d", i, k.id, len(k.data), i)
				}
			}
			checkIdx1(t, file, riff, frames)
		})
	}
}

func TestOpenDML(t *testing.T) {
	const limit = 64 << 10
	cfg := Config{Width: 320, Height: 240, FPS: 25}
	var frames [][]byte
	for i := range 60 {
		frames = append(frames, fakeJPEG(i, 4001+i*37))
	}
	_, file := writeFile(t, cfg, limit, frames)
	top := parseChunks(t, file, 0)
	if len(top) < 3 {
		t.Fatalf("%d RIFFs, want at least 3 at a limit of %d bytes", len(top), limit)
	}
	var end int64
	for i, r := range top {
		want := "AVIX"
		if i == 0 {
			want = "AVI "
		}
		if r.id != "RIFF" || r.typ != want {
			t.Fatalf("top-level chunk %d is %s %q, want RIFF %q", i, r.id, r.typ, want)
		}
		if r.size > limit {
			t.Errorf("RIFF %d has size %d, over the limit %d", i, r.size, limit)
		}
		end = r.pos + 8 + int64(r.size)
	}
	if end != int64(len(file)) {
		t.Errorf("RIFFs end at %d, the file at %d", end, len(file))
	}

	first := len(top[0].must(t, "LIST", "movi").kids) - 1 // without ix00
	maxFrame := len(frames[len(frames)-1])
	strl := checkHeaders(t, top[0], cfg, len(frames), first, maxFrame, 25, 1)
	checkIdx1(t, file, top[0], frames[:first])

	odml := top[0].must(t, "LIST", "hdrl").must(t, "LIST", "odml")
	if got := u32(odml.must(t, "dmlh", "").data, 0); got != uint32(len(frames)) {
		t.Errorf("dmlh dwTotalFrames = %d, want %d", got, len(frames))
	}
	indx := strl.must(t, "indx", "")
	if len(indx.data) != superIndexSize {
		t.Fatalf("indx is %d bytes, want %d", len(indx.data), superIndexSize)
	}
	if lpe, typ, n, id := binary.LittleEndian.Uint16(indx.data), indx.data[3], int(u32(indx.data, 4)), string(indx.data[8:12]); lpe != 4 || typ != indexOfIndexes || n != len(top) || id != "00dc" {
		t.Fatalf("indx header: %d longs per entry, type %d, %d entries, chunk %q; want 4, %d, %d, \"00dc\"", lpe, typ, n, id, indexOfIndexes, len(top))
	}
	next := 0 // the frame the next standard index entry must point to
	for s, r := range top {
		e := indx.data[24+16*s:]
		ixPos, ixSize, duration := int64(binary.LittleEndian.Uint64(e)), u32(e, 8), int(u32(e, 12))
		movi := r.must(t, "LIST", "movi")
		ix := movi.kids[len(movi.kids)-1]
		if ix.id != "ix00" || ix.pos != ixPos || ixSize != ix.size+8 {
			t.Fatalf("indx entry %d points at %d (%d bytes), the last chunk of RIFF %d's movi is %q at %d (%d bytes)", s, ixPos, ixSize, s, ix.id, ix.pos, ix.size+8)
		}
		if duration != len(movi.kids)-1 || int(u32(ix.data, 4)) != duration || ix.data[3] != indexOfChunks {
			t.Fatalf("RIFF %d: indx duration %d, ix00 entries %d, movi frames %d", s, duration, u32(ix.data, 4), len(movi.kids)-1)
		}
		base := int64(binary.LittleEndian.Uint64(ix.data[12:]))
		for k := range duration {
			off, size := int64(u32(ix.data, 24+8*k)), u32(ix.data, 28+8*k)
			f := frames[next]
			if size != uint32(len(f)) || !bytes.Equal(file[base+off:base+off+int64(size)], f) {
				t.Fatalf("RIFF %d ix00 entry %d (offset %d, size %d) does not hold frame %d", s, k, off, size, next)
			}
			next++
		}
	}
	if next != len(frames) {
		t.Errorf("the standard indexes list %d frames, want %d", next, len(frames))
	}
}

func TestWriterErrors(t *testing.T) {
	t.Run("config", func(t *testing.T) {
		tests := []struct {
			cfg  Config
			want string
		}{
			{Config{Width: 0, Height: 480, FPS: 30}, "avi: frame size 0x480 out of range: width and height must be 1 to 32767"},
			{Config{Width: 640, Height: 40000, FPS: 30}, "avi: frame size 640x40000 out of range: width and height must be 1 to 32767"},
			{Config{Width: 640, Height: 480, FPS: 0}, "avi: frame rate 0 out of range: it must be 0.01 to 1000 frames per second"},
			{Config{Width: 640, Height: 480, FPS: 5000}, "avi: frame rate 5000 out of range: it must be 0.01 to 1000 frames per second"},
		}
		for _, tc := range tests {
			path := filepath.Join(t.TempDir(), "bad.avi")
			w, err := Create(path, tc.cfg)
			if w != nil || err == nil || err.Error() != tc.want {
				t.Errorf("Create(%+v) = %v, %v; want error %q", tc.cfg, w, err, tc.want)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Create(%+v) failed but left %s: %v", tc.cfg, path, err)
			}
		}
	})

	t.Run("refused frames leave the file whole", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out.avi")
		w, err := Create(path, Config{Width: 8, Height: 8, FPS: 10})
		if err != nil {
			t.Fatal(err)
		}
		good := fakeJPEG(0, 100)
		if err := w.WriteFrame(good); err != nil {
			t.Fatal(err)
		}
		// Lowered after the first frame, since the headers alone fill 4 KiB.
		w.limit = 4096
		refused := []struct {
			frame []byte
			is    error
			want  string
		}{
			{[]byte("\x89PNG\r\n\x1a\n"), ErrNotJPEG, "avi: frame is not a JPEG picture (no FF D8 start-of-image marker)"},
			{nil, ErrNotJPEG, "avi: frame is not a JPEG picture (no FF D8 start-of-image marker)"},
			{fakeJPEG(1, 5000), ErrFrameTooLarge, "avi: frame too large for an AVI file: 5000 bytes"},
		}
		for _, r := range refused {
			err := w.WriteFrame(r.frame)
			if !errors.Is(err, r.is) || err.Error() != r.want {
				t.Errorf("WriteFrame(% .8x) = %v, want %q", r.frame, err, r.want)
			}
		}
		if err := w.WriteFrame(good); err != nil {
			t.Fatalf("a good frame after refused ones: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("second Close = %v, want ErrClosed", err)
		}
		if err := w.WriteFrame(good); !errors.Is(err, ErrClosed) {
			t.Errorf("WriteFrame after Close = %v, want ErrClosed", err)
		}
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		top := parseChunks(t, file, 0)
		var n int
		for _, r := range top {
			for _, k := range r.must(t, "LIST", "movi").kids {
				if k.id == "00dc" {
					n++
				}
			}
		}
		if n != 2 {
			t.Errorf("the file holds %d frames, want the 2 accepted ones", n)
		}
	})

	t.Run("too many RIFFs", func(t *testing.T) {
		w, err := Create(filepath.Join(t.TempDir(), "out.avi"), Config{Width: 8, Height: 8, FPS: 10})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var err2 error
		for i := 0; i < superIndexEntries+1 && err2 == nil; i++ {
			err2 = w.WriteFrame(fakeJPEG(i, 100))
			// From the second frame on, an AVIX RIFF has room for one
			// 100-byte frame and its index.
			w.limit = 200
		}
		want := fmt.Sprintf("avi: video too large for one AVI file: more than %d RIFFs of 200 bytes", superIndexEntries)
		if !errors.Is(err2, ErrFileTooLarge) || err2.Error() != want {
			t.Fatalf("writing %d one-frame RIFFs: %v, want %q", superIndexEntries+1, err2, want)
		}
		if got := w.Frames(); got != superIndexEntries {
			t.Errorf("Frames() = %d, want %d", got, superIndexEntries)
		}
	})
}

// errWriteSeeker fails every write after the first n bytes.
type errWriteSeeker struct {
	n, pos int64
}

var errDiskFull = errors.New("disk full")

func (e *errWriteSeeker) Write(p []byte) (int, error) {
	if e.pos+int64(len(p)) > e.n {
		return 0, errDiskFull
	}
	e.pos += int64(len(p))
	return len(p), nil
}

func (e *errWriteSeeker) Seek(off int64, whence int) (int64, error) {
	e.pos = off
	return off, nil
}

func TestWriteFailure(t *testing.T) {
	w, err := NewWriter(&errWriteSeeker{n: 1 << 20}, Config{Width: 8, Height: 8, FPS: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; err == nil && i < 100; i++ {
		err = w.WriteFrame(fakeJPEG(i, 100<<10))
	}
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("writing 10 MB to a 1 MB disk: %v, want errDiskFull", err)
	}
	if err := w.Close(); !errors.Is(err, errDiskFull) {
		t.Errorf("Close after a failed write = %v, want errDiskFull", err)
	}
}

func TestRateScale(t *testing.T) {
	tests := []struct {
		fps         float64
		rate, scale uint32
	}{
		{30, 30, 1},
		{15, 15, 1},
		{1000, 1000, 1},
		{30000.0 / 1001, 30000, 1001},
		{60000.0 / 1001, 60000, 1001},
		{12.5, 25, 2},
		{0.01, 1, 100},
		{29.97, 2997, 100},
	}
	for _, tc := range tests {
		if r, s := rateScale(tc.fps); r != tc.rate || s != tc.scale {
			t.Errorf("rateScale(%v) = %d/%d, want %d/%d", tc.fps, r, s, tc.rate, tc.scale)
		}
	}
}
