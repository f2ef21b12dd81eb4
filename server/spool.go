package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/protocol"
)

// A spool file holds a session's frames on disk in the order they arrived,
// one record per frame. Every record is a 20-byte header followed by the
// payload, all little endian:
//
//	offset size field
//	0      4    magic "RFSP"
//	4      4    frame number (uint32)
//	8      1    encoding: 1 jpeg, 2 png, 3 raw (protocol.EncodingCode)
//	9      3    zero
//	12     4    payload length (uint32)
//	16     4    CRC-32C (Castagnoli) of the payload
//	20     -    payload
//
// The magic, the length and the checksum make a record cut off by a crash,
// or damaged on the disk, detectable: a recovered spool is truncated to its
// last whole record, and a damaged one before it is left out.
const spoolHeaderSize = 20

// spoolBufferSize is the write buffer of every spool: the RAM a live
// streaming session holds for its frames, and so the memory it reserves at
// start. A parked spool (its session disconnected) holds none.
const spoolBufferSize = 1 << 20

var spoolMagic = [4]byte{'R', 'F', 'S', 'P'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errSpoolClosed is returned by the methods of a closed spool.
var errSpoolClosed = errors.New("spool is closed")

// errSpoolDamaged is wrapped by the errors of a record that does not read
// back as it was written.
var errSpoolDamaged = errors.New("the spool is corrupt")

// diskBudget is the running count of the bytes all spools hold on disk,
// checked before every append so that together they never pass the limit
// without a directory walk.
type diskBudget struct {
	limit int64
	used  atomic.Int64
}

// reserve counts n more bytes, unless that would pass the limit.
func (b *diskBudget) reserve(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

// release uncounts n bytes whose spool has been removed.
func (b *diskBudget) release(n int64) { b.used.Add(-n) }

// diskFullError is returned by Append when the frame would pass the disk
// limit of all spools.
type diskFullError struct {
	number      int
	need        int64
	used, limit int64
}

func (e *diskFullError) Error() string {
	return fmt.Sprintf("spool disk limit reached: the spools hold %d bytes, the limit is %d (max spool bytes), and frame %d needs %d more", e.used, e.limit, e.number, e.need)
}

// spoolEntry locates one frame's record in the spool file.
type spoolEntry struct {
	offset   int64
	length   uint32
	encoding string
	// checked: the frame was checked before it was appended (by this
	// run of the server); a recovered one was not.
	checked bool
}

// spool appends a session's frames to a file through a write buffer and
// keeps only an index in memory. It implements pipeline.FrameSource.
// Its methods are safe for concurrent use.
type spool struct {
	path   string
	budget *diskBudget // shared by every spool of the server

	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	size   int64 // bytes appended, buffered ones included
	index  map[int]spoolEntry
	closed bool
	// count is len(index), kept beside it so that Count never waits on mu,
	// which Append, Park, Sync and Close hold across disk writes.
	count atomic.Int64
}

var _ pipeline.FrameSource = (*spool)(nil)

// createSpool creates (or truncates) the spool file at path, whose appends
// count against budget.
func createSpool(path string, budget *diskBudget) (*spool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create spool: %w", err)
	}
	return &spool{path: path, budget: budget, f: f, index: make(map[int]spoolEntry)}, nil
}

// Append stores the frame number with its payload unless that number is
// already stored, in which case it writes nothing and reports a duplicate.
// The caller has checked that the payload is a readable picture.
// The payload is copied into the write buffer (or written through), so the
// caller may reuse it.
func (s *spool) Append(number int, encoding string, payload []byte) (duplicate bool, err error) {
	code, ok := protocol.EncodingCode(encoding)
	if !ok {
		return false, fmt.Errorf("spool frame %d: unknown encoding %q", number, encoding)
	}
	if number < 0 || number > math.MaxUint32 {
		return false, fmt.Errorf("spool frame %d: number out of range", number)
	}
	if len(payload) > math.MaxUint32 {
		return false, fmt.Errorf("spool frame %d: payload of %d bytes is too large", number, len(payload))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, errSpoolClosed
	}
	if _, dup := s.index[number]; dup {
		return true, nil
	}
	need := spoolHeaderSize + int64(len(payload))
	if !s.budget.reserve(need) {
		return false, &diskFullError{number: number, need: need, used: s.budget.used.Load(), limit: s.budget.limit}
	}
	if s.w == nil {
		s.w = bufio.NewWriterSize(s.f, spoolBufferSize)
	}
	var h [spoolHeaderSize]byte
	copy(h[0:4], spoolMagic[:])
	binary.LittleEndian.PutUint32(h[4:8], uint32(number))
	h[8] = code
	binary.LittleEndian.PutUint32(h[12:16], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[16:20], crc32.Checksum(payload, castagnoli))
	if _, err := s.w.Write(h[:]); err != nil {
		s.budget.release(need)
		return false, fmt.Errorf("write spool %s: %w", s.path, err)
	}
	if _, err := s.w.Write(payload); err != nil {
		s.budget.release(need)
		return false, fmt.Errorf("write spool %s: %w", s.path, err)
	}
	s.index[number] = spoolEntry{offset: s.size, length: uint32(len(payload)), encoding: encoding, checked: true}
	s.count.Store(int64(len(s.index)))
	s.size += need
	return false, nil
}

// spoolDamage is a stretch of a recovered spool that holds no whole, valid
// record, between two that do: dropped from the index, left in the file.
type spoolDamage struct {
	offset, bytes int64
	frame         int    // the frame number its header names, -1 if it has no readable header
	why           string // what is wrong with the record at offset
}

// openSpool opens an existing spool file, after a restart, and indexes its
// records. It checks each record (magic, encoding, length, CRC): a record
// that fails while a valid one follows is dropped from the index, and
// reported in damaged, and the scan goes on from the next valid record; the
// bytes after the last valid record (a record cut off mid-write by a crash)
// are truncated, never served, and cut is their number. The file's bytes
// are counted in budget, over its limit or not: they are on the disk
// already.
func openSpool(path string, budget *diskBudget) (sp *spool, cut int64, damaged []spoolDamage, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("open spool: %w", err)
	}
	fail := func(err error) (*spool, int64, []spoolDamage, error) {
		f.Close()
		return nil, 0, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("open spool: %w", err))
	}
	size := info.Size()
	index := make(map[int]spoolEntry)
	var payload []byte // reused: recovery only checks each record
	var off int64
	for off < size {
		rec, why, err := recordAt(f, off, size, &payload)
		if err != nil {
			return fail(fmt.Errorf("read spool %s: %w", path, err))
		}
		if why == "" {
			if _, dup := index[rec.number]; !dup {
				index[rec.number] = spoolEntry{offset: off, length: rec.length, encoding: rec.encoding}
			}
			off += spoolHeaderSize + int64(rec.length)
			continue
		}
		next, found, err := nextRecord(f, off+1, size, &payload)
		if err != nil {
			return fail(fmt.Errorf("read spool %s: %w", path, err))
		}
		if !found {
			break // a torn tail: truncated below
		}
		damaged = append(damaged, spoolDamage{offset: off, bytes: next - off, frame: rec.number, why: why})
		off = next
	}
	if cut = size - off; cut > 0 {
		if err := f.Truncate(off); err != nil {
			return fail(fmt.Errorf("truncate spool %s to its last whole record: %w", path, err))
		}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return fail(fmt.Errorf("open spool: %w", err))
	}
	budget.used.Add(off)
	sp = &spool{path: path, budget: budget, f: f, size: off, index: index}
	sp.count.Store(int64(len(index)))
	return sp, cut, damaged, nil
}

// scannedRecord is what recordAt read of a record's header: number is -1
// when the header has no record magic.
type scannedRecord struct {
	number   int
	encoding string
	length   uint32
}

// recordAt reads the record at off of f, a file of size bytes, into
// *payload (grown as needed) and returns its header, and why it is not a
// whole, valid record, or "". The error is a failure to read the file.
func recordAt(f *os.File, off, size int64, payload *[]byte) (scannedRecord, string, error) {
	rec := scannedRecord{number: -1}
	if size-off < spoolHeaderSize {
		return rec, "header cut off", nil
	}
	var h [spoolHeaderSize]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		return rec, "", err
	}
	if [4]byte(h[0:4]) != spoolMagic {
		return rec, "no record magic", nil
	}
	rec.number, rec.length = int(binary.LittleEndian.Uint32(h[4:8])), binary.LittleEndian.Uint32(h[12:16])
	rec.encoding, _ = protocol.EncodingName(h[8])
	switch {
	case rec.encoding == "":
		return rec, fmt.Sprintf("unknown encoding code %d", h[8]), nil
	case rec.length > maxFrameBytesLimit:
		return rec, fmt.Sprintf("length %d over the limit", rec.length), nil
	case off+spoolHeaderSize+int64(rec.length) > size:
		return rec, "payload cut off", nil
	}
	*payload = slices.Grow((*payload)[:0], int(rec.length))[:rec.length]
	if _, err := f.ReadAt(*payload, off+spoolHeaderSize); err != nil {
		return rec, "", err
	}
	if crc32.Checksum(*payload, castagnoli) != binary.LittleEndian.Uint32(h[16:20]) {
		return rec, "checksum mismatch", nil
	}
	return rec, "", nil
}

// nextRecord returns the offset of the first whole, valid record of f (of
// size bytes) at from or after, and whether there is one.
func nextRecord(f *os.File, from, size int64, payload *[]byte) (int64, bool, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk+len(spoolMagic)-1)
	for base := from; base < size; base += chunk {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, false, err
		}
		for i := 0; i+len(spoolMagic) <= n; {
			j := bytes.Index(buf[i:n], spoolMagic[:])
			if j < 0 {
				break
			}
			at := base + int64(i+j)
			_, why, err := recordAt(f, at, size, payload)
			if err != nil {
				return 0, false, err
			}
			if why == "" {
				return at, true, nil
			}
			i += j + 1
		}
	}
	return 0, false, nil
}

// DropUnreadable reads every stored frame back and takes out of the index
// those whose record fails its check (damaged on disk) and, of those not
// checked before they were appended (recovered at start, stored by an
// earlier run that may have checked less), those check refuses. It returns
// their numbers in order: Count and Each no longer know them, so that one
// bad frame costs one frame of the video, not the phrase. The error is a
// failure to read the spool at all, or ctx's.
func (s *spool) DropUnreadable(ctx context.Context, check func(encoding string, payload []byte) error) ([]int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errSpoolClosed
	}
	if err := s.flushLocked(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	index := maps.Clone(s.index)
	f := s.f
	s.mu.Unlock()

	var bad []int
	for n, e := range index {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		payload, err := readRecord(f, e, n)
		if errors.Is(err, errSpoolDamaged) || err == nil && !e.checked && check(e.encoding, payload) != nil {
			bad = append(bad, n)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read spool %s: %w", s.path, err)
		}
	}
	slices.Sort(bad)
	s.mu.Lock()
	for _, n := range bad {
		delete(s.index, n)
	}
	s.count.Store(int64(len(s.index)))
	s.mu.Unlock()
	return bad, nil
}

// Flush writes the buffered frames to the file.
func (s *spool) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errSpoolClosed
	}
	return s.flushLocked()
}

func (s *spool) flushLocked() error {
	if s.w == nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("flush spool %s: %w", s.path, err)
	}
	return nil
}

// Sync writes the buffered frames to the file and fsyncs it: once it
// returns nil, every frame appended survives a power cut.
func (s *spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errSpoolClosed
	}
	if err := s.flushLocked(); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync spool %s: %w", s.path, err)
	}
	return nil
}

// Park writes the buffered frames to the file and frees the write buffer,
// while no client streams to the spool; the next Append allocates it again.
// A closed spool has no buffer left to park: Park does nothing. (A session
// is parked after its state changed, and may have ended meanwhile.)
func (s *spool) Park() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if err := s.flushLocked(); err != nil {
		return err
	}
	s.w = nil
	return nil
}

// Numbers returns the stored frame numbers in ascending order.
func (s *spool) Numbers() []int {
	s.mu.Lock()
	numbers := make([]int, 0, len(s.index))
	for n := range s.index {
		numbers = append(numbers, n)
	}
	s.mu.Unlock()
	slices.Sort(numbers)
	return numbers
}

// Has reports whether frame number is stored.
func (s *spool) Has(number int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.index[number]
	return ok
}

// Count returns the number of distinct frames stored. It never waits on
// the disk.
func (s *spool) Count() int { return int(s.count.Load()) }

// Buffered returns the bytes held in RAM, not yet written to the file.
func (s *spool) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.w == nil {
		return 0
	}
	return s.w.Buffered()
}

// Size returns the bytes appended so far, headers included.
func (s *spool) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Each flushes the write buffer and calls fn for every stored frame in
// frame-number order, reading each back from the file and checking it
// against its header. Each frame's Data is a fresh slice that fn may keep.
// Frames appended while Each runs are not visited.
func (s *spool) Each(ctx context.Context, fn func(pipeline.EncodedFrame) error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errSpoolClosed
	}
	if err := s.flushLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	numbers := make([]int, 0, len(s.index))
	for n := range s.index {
		numbers = append(numbers, n)
	}
	entries := make([]spoolEntry, len(numbers))
	slices.Sort(numbers)
	for i, n := range numbers {
		entries[i] = s.index[n]
	}
	f := s.f
	s.mu.Unlock()

	for i, n := range numbers {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := readRecord(f, entries[i], n)
		if err != nil {
			return fmt.Errorf("read spool %s: %w", s.path, err)
		}
		if err := fn(pipeline.EncodedFrame{Number: n, Encoding: entries[i].encoding, Data: data}); err != nil {
			return err
		}
	}
	return nil
}

// readRecord reads the record of frame n at e and returns its payload after
// checking the header and the checksum.
func readRecord(f *os.File, e spoolEntry, n int) ([]byte, error) {
	rec := make([]byte, spoolHeaderSize+int(e.length))
	if _, err := f.ReadAt(rec, e.offset); err != nil {
		return nil, fmt.Errorf("frame %d at offset %d: %w", n, e.offset, err)
	}
	h, payload := rec[:spoolHeaderSize], rec[spoolHeaderSize:]
	switch {
	case [4]byte(h[0:4]) != spoolMagic:
		return nil, fmt.Errorf("frame %d at offset %d: no record magic, %w", n, e.offset, errSpoolDamaged)
	case binary.LittleEndian.Uint32(h[4:8]) != uint32(n):
		return nil, fmt.Errorf("frame %d at offset %d: record holds frame %d, %w", n, e.offset, binary.LittleEndian.Uint32(h[4:8]), errSpoolDamaged)
	case binary.LittleEndian.Uint32(h[12:16]) != e.length:
		return nil, fmt.Errorf("frame %d at offset %d: record length %d, index says %d, %w", n, e.offset, binary.LittleEndian.Uint32(h[12:16]), e.length, errSpoolDamaged)
	case crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(h[16:20]):
		return nil, fmt.Errorf("frame %d at offset %d: checksum mismatch, %w", n, e.offset, errSpoolDamaged)
	}
	return payload, nil
}

// Close flushes nothing: it drops the write buffer and closes the file.
// A spool is closed when its session ends, whether or not it was processed.
func (s *spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.w = nil
	return s.f.Close()
}
