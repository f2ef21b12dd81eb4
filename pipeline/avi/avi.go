// Package avi writes and reads AVI files holding one Motion-JPEG video
// stream, storing each frame's JPEG bytes as they are: no decoding, no
// re-encoding. It is how the server turns a session's JPEG frames into a
// video at the speed of a file copy. Open (or MJPEGChunks) indexes such a
// file, or any Motion-JPEG AVI, so that its frames can be read back as the
// JPEGs they are.
//
// A file stays a plain AVI 1.0 file (one RIFF 'AVI ' with an 'idx1' index)
// while it fits in one RIFF of at most 1 GiB, the size every reader handles.
// A longer recording goes on in 'AVIX' RIFFs as the OpenDML AVI extensions
// describe: a super index ('indx') in the stream's header list pointing to a
// standard index ('ix00') at the end of each 'movi' list, and the total frame
// count in 'odml'/'dmlh'. The room for those headers is reserved as 'JUNK'
// chunks when the file is started and filled in by Close once a second RIFF
// exists, so a short file carries nothing a plain AVI reader does not know.
//
// Layout of a file, sizes in bytes, all numbers little endian:
//
//	RIFF 'AVI '
//	  LIST 'hdrl'
//	    avih (56)                 MainAVIHeader
//	    LIST 'strl'
//	      strh (56)               AVIStreamHeader, 'vids' 'MJPG'
//	      strf (40)               BITMAPINFOHEADER, compression 'MJPG'
//	      JUNK (superIndexSize)   becomes 'indx' in an OpenDML file
//	    JUNK (odmlSize)           becomes LIST 'odml' { dmlh } likewise
//	  LIST 'movi'
//	    00dc ...                  one chunk per frame, padded to even size
//	    ix00                      OpenDML files only
//	  idx1                        frames of this first RIFF
//	RIFF 'AVIX'                   OpenDML files only, as many as needed
//	  LIST 'movi'
//	    00dc ...
//	    ix00
package avi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// MaxRIFFSize is the largest size a RIFF of the file reaches (the value of
// its size field) before the writer starts the next one. 1 GiB is the limit
// that readers of plain AVI files and of OpenDML files both expect.
const MaxRIFFSize = 1 << 30

// MaxDimension is the largest width or height accepted: the stream header
// stores the frame rectangle in signed 16-bit fields.
const MaxDimension = 32767

// superIndexEntries is the number of RIFFs the reserved super index can
// point to; at MaxRIFFSize each, a file can hold about 256 GiB of frames.
const superIndexEntries = 256

// Sizes of the fixed structures, in bytes, without the 8-byte chunk header.
const (
	chunkHeaderSize  = 8
	avihSize         = 56
	strhSize         = 56
	strfSize         = 40
	superIndexSize   = 24 + 16*superIndexEntries
	dmlhSize         = 248
	odmlSize         = 4 + chunkHeaderSize + dmlhSize // 'odml' + dmlh chunk
	stdIndexHeader   = 24                             // 'ix00' payload before its entries
	stdIndexEntry    = 8
	idx1Entry        = 16
	strlListSize     = 4 + 3*chunkHeaderSize + strhSize + strfSize + superIndexSize
	hdrlListSize     = 4 + chunkHeaderSize + avihSize + chunkHeaderSize + strlListSize + chunkHeaderSize + odmlSize
	bitmapBitCount   = 24
	avifHasIndex     = 0x10 // avih flag: the file has an idx1 index
	aviifKeyframe    = 0x10 // idx1 flag: the chunk is a key frame
	indexOfIndexes   = 0x00 // bIndexType of a super index
	indexOfChunks    = 0x01 // bIndexType of a standard index
	defaultStreamQty = 0xFFFFFFFF
)

// Errors wrapped by the errors of this package; test them with errors.Is.
var (
	// ErrNotJPEG means a frame does not start with a JPEG start-of-image
	// marker (FF D8).
	ErrNotJPEG = errors.New("frame is not a JPEG picture")
	// ErrFrameTooLarge means one frame does not fit in a RIFF.
	ErrFrameTooLarge = errors.New("frame too large for an AVI file")
	// ErrFileTooLarge means the file would need more RIFFs than its super
	// index has room for.
	ErrFileTooLarge = errors.New("video too large for one AVI file")
	// ErrClosed means the Writer was used after Close.
	ErrClosed = errors.New("AVI writer is closed")
)

// Config describes the video stream of a file.
type Config struct {
	// Width and Height are the size of every frame in pixels, 1 to
	// MaxDimension.
	Width, Height int
	// FPS is the frame rate, MinFPS to MaxFPS.
	FPS float64
}

// The range of frame rates accepted: the stream header stores the rate as a
// fraction of 32-bit integers, exact to a millionth of a frame per second.
const (
	MinFPS = 0.01
	MaxFPS = 1000
)

func (c Config) validate() error {
	if c.Width < 1 || c.Height < 1 || c.Width > MaxDimension || c.Height > MaxDimension {
		return fmt.Errorf("avi: frame size %dx%d out of range: width and height must be 1 to %d", c.Width, c.Height, MaxDimension)
	}
	if !(c.FPS >= MinFPS && c.FPS <= MaxFPS) {
		return fmt.Errorf("avi: frame rate %v out of range: it must be %v to %v frames per second", c.FPS, MinFPS, MaxFPS)
	}
	return nil
}

// Writer writes an MJPEG AVI file frame by frame. Frames are buffered and
// appended in order; the headers that depend on the whole file (sizes, frame
// counts, indexes) are written by Close. Until Close returns, the file is not
// a valid AVI. A Writer is not safe for concurrent use.
type Writer struct {
	ws    io.WriteSeeker
	bw    *bufio.Writer
	file  *os.File // set by Create, closed by Close
	cfg   Config
	limit int64 // MaxRIFFSize, lowered by tests to exercise OpenDML

	pos     int64 // offset of the next byte written
	avihPos int64 // offset of the avih payload
	strhPos int64 // offset of the strh payload
	indxPos int64 // offset of the JUNK chunk reserved for indx
	odmlPos int64 // offset of the JUNK chunk reserved for LIST odml

	riffPos     int64        // offset of the current RIFF's "RIFF"
	moviPos     int64        // offset of the current movi list's "LIST"
	chunks      []chunkEntry // frames of the current RIFF
	super       []superEntry // one per finished standard index
	firstFrames int          // frames in the first RIFF, once it is closed
	frames      int
	maxFrame    int
	patches     []patch
	err         error // sticky: the first write failure
	closed      bool
}

// chunkEntry locates one frame: the offset of its payload and its size.
type chunkEntry struct {
	pos  int64
	size uint32
}

// superEntry is an entry of the indx super index.
type superEntry struct {
	pos      int64 // offset of the ix00 chunk
	size     uint32
	duration uint32
}

// patch is a header field written on Close.
type patch struct {
	pos  int64
	data []byte
}

// Create creates or truncates the file at path and starts an AVI in it.
// Close finishes the AVI and closes the file.
func Create(path string, cfg Config) (*Writer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("avi: %w", err)
	}
	w, err := NewWriter(f, cfg)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	w.file = f
	return w, nil
}

// NewWriter starts an AVI on ws, whose current position must be its start
// (offset 0). Close finishes the AVI but leaves ws open.
func NewWriter(ws io.WriteSeeker, cfg Config) (*Writer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &Writer{ws: ws, bw: bufio.NewWriterSize(ws, 256<<10), cfg: cfg, limit: MaxRIFFSize}
	w.writeHeaders()
	if w.err != nil {
		return nil, w.err
	}
	return w, nil
}

// Frames returns the number of frames written so far.
func (w *Writer) Frames() int { return w.frames }

// WriteFrame appends one frame, the complete bytes of a JPEG picture of the
// configured size. It checks only the JPEG start-of-image marker: decoding
// the picture to check its size is the caller's choice. A frame refused with
// ErrNotJPEG, ErrFrameTooLarge or ErrFileTooLarge is not written and the
// Writer goes on; after any other error the Writer is unusable and Close
// only releases the file.
func (w *Writer) WriteFrame(jpeg []byte) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if len(jpeg) < 2 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 {
		return fmt.Errorf("avi: %w (no FF D8 start-of-image marker)", ErrNotJPEG)
	}
	if w.riffSize(len(jpeg)) > w.limit {
		if len(w.chunks) == 0 {
			return fmt.Errorf("avi: %w: %d bytes", ErrFrameTooLarge, len(jpeg))
		}
		if err := w.nextRIFF(); err != nil {
			return err
		}
		if w.riffSize(len(jpeg)) > w.limit {
			return fmt.Errorf("avi: %w: %d bytes", ErrFrameTooLarge, len(jpeg))
		}
	}
	hdr := [chunkHeaderSize]byte{'0', '0', 'd', 'c'}
	binary.LittleEndian.PutUint32(hdr[4:], uint32(len(jpeg)))
	w.write(hdr[:])
	w.chunks = append(w.chunks, chunkEntry{pos: w.pos, size: uint32(len(jpeg))})
	w.write(jpeg)
	if len(jpeg)%2 == 1 {
		w.write([]byte{0})
	}
	if w.err != nil {
		return w.err
	}
	w.frames++
	w.maxFrame = max(w.maxFrame, len(jpeg))
	return nil
}

// Close finishes the file: it ends the last RIFF with its indexes and fills
// in the headers. When the Writer was made by Create it closes the file too.
// Close after Close returns ErrClosed.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	err := w.finish()
	if w.file != nil {
		if cerr := w.file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("avi: %w", cerr)
		}
	}
	return err
}

func (w *Writer) finish() error {
	if w.err != nil {
		return w.err
	}
	opendml := len(w.super) > 0
	if opendml {
		w.writeStdIndex()
	}
	w.endList(w.moviPos)
	if !opendml {
		w.firstFrames = w.frames
		w.writeIdx1()
	}
	w.endList(w.riffPos)
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	if w.err != nil {
		return w.err
	}

	rate, scale := rateScale(w.cfg.FPS)
	maxBytesPerSec := math.Ceil(float64(w.maxFrame) * w.cfg.FPS)
	w.patchUint32(w.avihPos+4, uint32(min(maxBytesPerSec, math.MaxUint32)))
	w.patchUint32(w.avihPos+16, uint32(w.firstFrames))
	w.patchUint32(w.avihPos+28, uint32(w.maxFrame))
	w.patchUint32(w.strhPos+20, scale)
	w.patchUint32(w.strhPos+24, rate)
	w.patchUint32(w.strhPos+32, uint32(w.frames))
	w.patchUint32(w.strhPos+36, uint32(w.maxFrame))
	if opendml {
		w.patches = append(w.patches, patch{pos: w.indxPos, data: w.superIndex()}, patch{pos: w.odmlPos, data: w.odmlList()})
	}
	for _, p := range w.patches {
		if _, err := w.ws.Seek(p.pos, io.SeekStart); err != nil {
			return fmt.Errorf("avi: finish headers: %w", err)
		}
		if _, err := w.ws.Write(p.data); err != nil {
			return fmt.Errorf("avi: finish headers: %w", err)
		}
	}
	if _, err := w.ws.Seek(w.pos, io.SeekStart); err != nil {
		return fmt.Errorf("avi: finish headers: %w", err)
	}
	return nil
}

// writeHeaders writes everything before the first frame. Fields known only
// at the end are written as zero and patched by finish.
func (w *Writer) writeHeaders() {
	c := w.cfg
	w.riffPos = w.pos
	w.startList("RIFF", "AVI ")
	w.putFourCC("LIST")
	w.putUint32(hdrlListSize)
	w.putFourCC("hdrl")

	w.putFourCC("avih")
	w.putUint32(avihSize)
	w.avihPos = w.pos
	w.putUint32(uint32(math.Round(1e6 / c.FPS))) // dwMicroSecPerFrame
	w.putUint32(0)                               // dwMaxBytesPerSec, patched
	w.putUint32(0)                               // dwPaddingGranularity
	w.putUint32(avifHasIndex)                    // dwFlags
	w.putUint32(0)                               // dwTotalFrames, patched
	w.putUint32(0)                               // dwInitialFrames
	w.putUint32(1)                               // dwStreams
	w.putUint32(0)                               // dwSuggestedBufferSize, patched
	w.putUint32(uint32(c.Width))                 // dwWidth
	w.putUint32(uint32(c.Height))                // dwHeight
	w.write(make([]byte, 16))                    // dwReserved[4]

	w.putFourCC("LIST")
	w.putUint32(strlListSize)
	w.putFourCC("strl")

	w.putFourCC("strh")
	w.putUint32(strhSize)
	w.strhPos = w.pos
	w.putFourCC("vids")           // fccType
	w.putFourCC("MJPG")           // fccHandler
	w.putUint32(0)                // dwFlags
	w.putUint32(0)                // wPriority, wLanguage
	w.putUint32(0)                // dwInitialFrames
	w.putUint32(0)                // dwScale, patched
	w.putUint32(0)                // dwRate, patched
	w.putUint32(0)                // dwStart
	w.putUint32(0)                // dwLength, patched
	w.putUint32(0)                // dwSuggestedBufferSize, patched
	w.putUint32(defaultStreamQty) // dwQuality: the codec's default
	w.putUint32(0)                // dwSampleSize: frames vary in size
	w.putUint16(0)                // rcFrame.left
	w.putUint16(0)                // rcFrame.top
	w.putUint16(uint16(c.Width))  // rcFrame.right
	w.putUint16(uint16(c.Height)) // rcFrame.bottom

	w.putFourCC("strf")
	w.putUint32(strfSize)
	w.putUint32(strfSize)                       // biSize
	w.putUint32(uint32(c.Width))                // biWidth
	w.putUint32(uint32(c.Height))               // biHeight
	w.putUint16(1)                              // biPlanes
	w.putUint16(bitmapBitCount)                 // biBitCount
	w.putFourCC("MJPG")                         // biCompression
	w.putUint32(uint32(c.Width * c.Height * 3)) // biSizeImage
	w.write(make([]byte, 16))                   // biXPelsPerMeter, biYPelsPerMeter, biClrUsed, biClrImportant
	w.indxPos = w.reserve(superIndexSize)       // indx in an OpenDML file
	w.odmlPos = w.reserve(odmlSize)             // LIST odml in an OpenDML file
	w.moviPos = w.startList("LIST", "movi")
}

// reserve writes a JUNK chunk with size bytes of payload and returns its
// offset.
func (w *Writer) reserve(size int) int64 {
	at := w.pos
	w.putFourCC("JUNK")
	w.putUint32(uint32(size))
	w.write(make([]byte, size))
	return at
}

// riffSize returns the size field the current RIFF would have if a frame of
// n bytes were added and the RIFF then ended with its indexes.
func (w *Writer) riffSize(n int) int64 {
	k := int64(len(w.chunks) + 1)
	size := w.pos + chunkHeaderSize + int64(n+n%2) - w.riffPos - chunkHeaderSize
	size += chunkHeaderSize + stdIndexHeader + stdIndexEntry*k
	if len(w.super) == 0 {
		size += chunkHeaderSize + idx1Entry*k
	}
	return size
}

// nextRIFF ends the current RIFF and starts an AVIX RIFF with a new movi
// list.
func (w *Writer) nextRIFF() error {
	if len(w.super) == superIndexEntries-1 {
		return fmt.Errorf("avi: %w: more than %d RIFFs of %d bytes", ErrFileTooLarge, superIndexEntries, w.limit)
	}
	first := len(w.super) == 0
	w.writeStdIndex()
	w.endList(w.moviPos)
	if first {
		w.firstFrames = w.frames
		w.writeIdx1()
	}
	w.endList(w.riffPos)
	w.riffPos = w.startList("RIFF", "AVIX")
	w.moviPos = w.startList("LIST", "movi")
	w.chunks = w.chunks[:0]
	return w.err
}

// writeStdIndex writes the ix00 standard index of the current RIFF's frames
// and adds it to the super index. Offsets are relative to the RIFF's start.
func (w *Writer) writeStdIndex() {
	at := w.pos
	size := stdIndexHeader + stdIndexEntry*len(w.chunks)
	buf := make([]byte, 0, chunkHeaderSize+size)
	buf = append(buf, "ix00"...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(size))
	buf = binary.LittleEndian.AppendUint16(buf, 2) // wLongsPerEntry
	buf = append(buf, 0, indexOfChunks)            // bIndexSubType, bIndexType
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(w.chunks)))
	buf = append(buf, "00dc"...)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(w.riffPos)) // qwBaseOffset
	buf = binary.LittleEndian.AppendUint32(buf, 0)                 // dwReserved3
	for _, c := range w.chunks {
		// Bit 31 clear: every MJPEG frame is a key frame.
		buf = binary.LittleEndian.AppendUint32(buf, uint32(c.pos-w.riffPos))
		buf = binary.LittleEndian.AppendUint32(buf, c.size)
	}
	w.write(buf)
	w.super = append(w.super, superEntry{pos: at, size: uint32(len(buf)), duration: uint32(len(w.chunks))})
}

// writeIdx1 writes the AVI 1.0 index of the first RIFF's frames, with
// offsets relative to the movi list's 'movi' code.
func (w *Writer) writeIdx1() {
	base := w.moviPos + chunkHeaderSize
	buf := make([]byte, 0, chunkHeaderSize+idx1Entry*len(w.chunks))
	buf = append(buf, "idx1"...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(idx1Entry*len(w.chunks)))
	for _, c := range w.chunks {
		buf = append(buf, "00dc"...)
		buf = binary.LittleEndian.AppendUint32(buf, aviifKeyframe)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(c.pos-chunkHeaderSize-base))
		buf = binary.LittleEndian.AppendUint32(buf, c.size)
	}
	w.write(buf)
}

// superIndex returns the indx chunk that replaces the reserved JUNK chunk.
func (w *Writer) superIndex() []byte {
	buf := make([]byte, 0, chunkHeaderSize+superIndexSize)
	buf = append(buf, "indx"...)
	buf = binary.LittleEndian.AppendUint32(buf, superIndexSize)
	buf = binary.LittleEndian.AppendUint16(buf, 4) // wLongsPerEntry
	buf = append(buf, 0, indexOfIndexes)           // bIndexSubType, bIndexType
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(w.super)))
	buf = append(buf, "00dc"...)
	buf = append(buf, make([]byte, 12)...) // dwReserved[3]
	for _, e := range w.super {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(e.pos))
		buf = binary.LittleEndian.AppendUint32(buf, e.size)
		buf = binary.LittleEndian.AppendUint32(buf, e.duration)
	}
	return append(buf, make([]byte, chunkHeaderSize+superIndexSize-len(buf))...)
}

// odmlList returns the LIST 'odml' that replaces the reserved JUNK chunk.
func (w *Writer) odmlList() []byte {
	buf := make([]byte, 0, chunkHeaderSize+odmlSize)
	buf = append(buf, "LIST"...)
	buf = binary.LittleEndian.AppendUint32(buf, odmlSize)
	buf = append(buf, "odmldmlh"...)
	buf = binary.LittleEndian.AppendUint32(buf, dmlhSize)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(w.frames)) // dwTotalFrames
	return append(buf, make([]byte, chunkHeaderSize+odmlSize-len(buf))...)
}

// startList writes the header of a RIFF or LIST with its size to be
// patched by endList, and returns its offset.
func (w *Writer) startList(id, typ string) int64 {
	at := w.pos
	w.putFourCC(id)
	w.putUint32(0)
	w.putFourCC(typ)
	return at
}

// endList records the size of the RIFF or LIST starting at offset at,
// which ends at the current position.
func (w *Writer) endList(at int64) {
	w.patchUint32(at+4, uint32(w.pos-at-chunkHeaderSize))
}

func (w *Writer) patchUint32(at int64, v uint32) {
	w.patches = append(w.patches, patch{pos: at, data: binary.LittleEndian.AppendUint32(nil, v)})
}

func (w *Writer) putFourCC(s string) { w.write([]byte(s)) }

func (w *Writer) putUint32(v uint32) { w.write(binary.LittleEndian.AppendUint32(nil, v)) }

func (w *Writer) putUint16(v uint16) { w.write(binary.LittleEndian.AppendUint16(nil, v)) }

func (w *Writer) write(p []byte) {
	if w.err != nil {
		return
	}
	n, err := w.bw.Write(p)
	w.pos += int64(n)
	if err != nil {
		w.err = fmt.Errorf("avi: write: %w", err)
	}
}

// rateScale expresses fps (MinFPS to MaxFPS) as the fraction rate/scale of
// the stream header: exactly for whole rates and NTSC rates (30000/1001),
// otherwise to a millionth of a frame per second, in lowest terms.
func rateScale(fps float64) (rate, scale uint32) {
	for _, s := range []float64{1, 1001} {
		if r := math.Round(fps * s); math.Abs(r/s-fps) <= 1e-9*fps {
			return uint32(r), uint32(s)
		}
	}
	r, s := uint64(math.Round(fps*1e6)), uint64(1e6)
	a, b := r, s
	for b != 0 {
		a, b = b, a%b
	}
	return uint32(r / a), uint32(s / a)
}
