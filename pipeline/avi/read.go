package avi

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
)

// Reader reads the frames of a Motion-JPEG AVI file, each as the JPEG
// bytes it holds. Its methods are safe for concurrent use, so that frames
// can be read and decoded in parallel.
type Reader struct {
	f      *os.File
	chunks []Chunk
}

// Open opens the file at path and indexes its frames with MJPEGChunks. A
// file that is not a Motion-JPEG AVI gives an error wrapping ErrNotMJPEG;
// one that cannot be opened, the error of os.Open or os.File.Stat.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	chunks, err := MJPEGChunks(f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Reader{f: f, chunks: chunks}, nil
}

// Frames returns the number of frames.
func (r *Reader) Frames() int { return len(r.chunks) }

// ReadFrame returns the JPEG bytes of frame k, from 0 to Frames()-1, read
// into buf when it has room and into a new slice otherwise.
func (r *Reader) ReadFrame(k int, buf []byte) ([]byte, error) {
	c := r.chunks[k]
	if cap(buf) < c.Size {
		buf = make([]byte, c.Size)
	}
	buf = buf[:c.Size]
	if _, err := r.f.ReadAt(buf, c.Off); err != nil {
		return nil, err
	}
	return buf, nil
}

// Close closes the file.
func (r *Reader) Close() error { return r.f.Close() }

// Chunk is where one frame's bytes lie in a file.
type Chunk struct {
	Off  int64
	Size int
}

// ErrNotMJPEG says a file is not an AVI of Motion-JPEG frames that
// MJPEGChunks can index; a caller then reads it through a general video
// reader (OpenCV's).
var ErrNotMJPEG = errors.New("not a Motion-JPEG AVI")

// maxChunk bounds a frame's size, so that a corrupt header cannot make the
// reader allocate gigabytes.
const maxChunk = 64 << 20

// MJPEGChunks indexes the frames of stream 0 of an AVI file of size bytes
// by walking its RIFF structure ('RIFF AVI ' and OpenDML 'RIFF AVIX', their
// 'LIST movi' and 'LIST rec '): the frames can then be read and decoded in
// parallel, and JPEG's DCT scaling decodes them already shrunk. Every
// frame must start as a JPEG does. Any other file gives an error wrapping
// ErrNotMJPEG.
func MJPEGChunks(r io.ReaderAt, size int64) ([]Chunk, error) {
	var out []Chunk
	var hdr [12]byte
	var walk func(off, end int64, depth int) error
	walk = func(off, end int64, depth int) error {
		for off+8 <= end {
			if _, err := r.ReadAt(hdr[:8], off); err != nil {
				return ErrNotMJPEG
			}
			id := string(hdr[:4])
			sz := int64(binary.LittleEndian.Uint32(hdr[4:8]))
			body := off + 8
			container := (id == "RIFF" || id == "LIST") && sz >= 4 && depth < 4
			if body+sz > end && !container {
				// A frame cut short by a truncated file ends the walk.
				return nil
			}
			switch {
			case container:
				if _, err := r.ReadAt(hdr[8:12], body); err != nil {
					return nil
				}
				switch string(hdr[8:12]) {
				case "AVI ", "AVIX", "movi", "rec ":
					// A truncated file's last list claims more than there
					// is: walk what there is.
					if err := walk(body+4, min(body+sz, end), depth+1); err != nil {
						return err
					}
				}
			case id == "00dc" || id == "00db":
				if sz > maxChunk {
					return ErrNotMJPEG
				}
				if sz > 0 {
					out = append(out, Chunk{body, int(sz)})
				}
			}
			off = body + sz + sz&1
		}
		return nil
	}
	if _, err := r.ReadAt(hdr[:12], 0); err != nil || string(hdr[:4]) != "RIFF" || string(hdr[8:12]) != "AVI " {
		return nil, ErrNotMJPEG
	}
	if err := walk(0, size, 0); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, ErrNotMJPEG
	}
	var soi [2]byte
	if _, err := r.ReadAt(soi[:], out[0].Off); err != nil || soi != [2]byte{0xff, 0xd8} {
		return nil, ErrNotMJPEG
	}
	return out, nil
}
