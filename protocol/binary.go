package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// FrameHeaderSize is the length of the header that starts every v2 frame
// message.
const FrameHeaderSize = 16

// frameMagic opens every v2 frame message, so that a stray binary message
// (a v1 frame payload, a signal) is never taken for a v2 frame.
var frameMagic = [2]byte{'R', 'F'}

// FrameHeader is the header of a v2 frame message. On the wire, all little
// endian:
//
//	offset size field
//	0      2    magic "RF"
//	2      1    version, 2
//	3      1    encoding: 1 jpeg, 2 png, 3 raw
//	4      4    frame number (uint32), from 0 within the session
//	8      8    capture time, microseconds since the Unix epoch (int64)
//	16     -    payload: the encoded picture, to the end of the message
type FrameHeader struct {
	FrameNumber int
	// TimestampMicros is the capture time in microseconds since the Unix
	// epoch.
	TimestampMicros int64
	Encoding        string
}

// ErrBadFrameHeader is wrapped by the errors of ParseFrame.
var ErrBadFrameHeader = errors.New("bad v2 frame header")

// AppendFrame appends h and payload as one v2 frame message to dst.
func AppendFrame(dst []byte, h FrameHeader, payload []byte) ([]byte, error) {
	code, ok := EncodingCode(h.Encoding)
	if !ok {
		return dst, fmt.Errorf("%w: unknown encoding %q", ErrBadFrameHeader, h.Encoding)
	}
	if h.FrameNumber < 0 || h.FrameNumber > math.MaxUint32 {
		return dst, fmt.Errorf("%w: frame number %d out of range", ErrBadFrameHeader, h.FrameNumber)
	}
	dst = append(dst, frameMagic[0], frameMagic[1], 2, code)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.FrameNumber))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.TimestampMicros))
	return append(dst, payload...), nil
}

// ParseFrame splits a v2 frame message into its header and payload. The
// payload aliases msg.
func ParseFrame(msg []byte) (FrameHeader, []byte, error) {
	if len(msg) < FrameHeaderSize {
		return FrameHeader{}, nil, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrBadFrameHeader, len(msg), FrameHeaderSize)
	}
	if msg[0] != frameMagic[0] || msg[1] != frameMagic[1] {
		return FrameHeader{}, nil, fmt.Errorf("%w: no \"RF\" magic (starts % x)", ErrBadFrameHeader, msg[:2])
	}
	if msg[2] != 2 {
		return FrameHeader{}, nil, fmt.Errorf("%w: version %d, want 2", ErrBadFrameHeader, msg[2])
	}
	h := FrameHeader{
		FrameNumber:     int(binary.LittleEndian.Uint32(msg[4:8])),
		TimestampMicros: int64(binary.LittleEndian.Uint64(msg[8:16])),
	}
	var ok bool
	if h.Encoding, ok = EncodingName(msg[3]); !ok {
		return FrameHeader{}, nil, fmt.Errorf("%w: unknown encoding code %d", ErrBadFrameHeader, msg[3])
	}
	return h, msg[FrameHeaderSize:], nil
}

// RawHeaderSize is the length of the header of a "raw" frame payload.
const RawHeaderSize = 12

// ErrBadRawFrame is wrapped by the errors of ParseRaw.
var ErrBadRawFrame = errors.New("bad raw frame")

// AppendRaw appends a raw frame payload to dst: height, width and channels as
// little-endian uint32, then the pixels.
func AppendRaw(dst []byte, height, width, channels int, pix []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(height))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(width))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(channels))
	return append(dst, pix...)
}

// ParseRaw checks a raw frame payload and returns its dimensions and pixels
// (aliasing payload). The pixel count must match the header exactly.
func ParseRaw(payload []byte) (height, width, channels int, pix []byte, err error) {
	if len(payload) < RawHeaderSize {
		return 0, 0, 0, nil, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrBadRawFrame, len(payload), RawHeaderSize)
	}
	h := uint64(binary.LittleEndian.Uint32(payload[0:4]))
	w := uint64(binary.LittleEndian.Uint32(payload[4:8]))
	c := uint64(binary.LittleEndian.Uint32(payload[8:12]))
	if h == 0 || w == 0 || (c != 1 && c != 3 && c != 4) {
		return 0, 0, 0, nil, fmt.Errorf("%w: %dx%d with %d channels", ErrBadRawFrame, w, h, c)
	}
	pix = payload[RawHeaderSize:]
	if want := h * w * c; uint64(len(pix)) != want {
		return 0, 0, 0, nil, fmt.Errorf("%w: %dx%dx%d needs %d pixel bytes, got %d", ErrBadRawFrame, w, h, c, want, len(pix))
	}
	return int(h), int(w), int(c), pix, nil
}
