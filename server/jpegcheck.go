package server

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// checkJPEG checks that data is a whole baseline (or extended sequential)
// 8-bit JPEG whose every part a decoder needs is present and consistent,
// and returns its size. It reads the marker structure, not the pictures:
// start of image; quantization and Huffman tables that are well formed
// (Huffman code lengths that make a prefix code, DC symbols of at most 15
// bits); one frame header of 1 or 3 components with sampling factors of 1
// to 4 and at most 10 blocks per MCU, every quantization table it names
// defined; scans naming defined tables and components of the frame, each
// component in exactly one scan, each with entropy-coded data whose 0xFF
// bytes are stuffed or restart markers in sequence; and the end-of-image
// marker last, followed by zero padding at most. Progressive, lossless,
// hierarchical, arithmetic-coded and 12-bit JPEGs are refused: no capture
// client sends them.
//
// FuzzFrameCheck holds it to its purpose: whatever it accepts, the
// processing reads (OpenCV decodes it at the size it gives, and the
// rebuilt video takes it as received). It never decodes pixels: it costs a
// scan of the bytes, a few microseconds a frame, where a decode costs
// milliseconds.
func checkJPEG(data []byte) (width, height int, err error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return 0, 0, errors.New("no start-of-image marker (FF D8)")
	}
	var (
		quant     [4]bool
		huff      [2][4]bool // [class: 0 DC, 1 AC][table]
		frame     bool
		comps     []jpegComponent
		restart   int
		scans     int
		pos       = 2
		marker    byte
		scanEnded bool // marker holds the marker that ended a scan's data
	)
	for {
		if scanEnded {
			scanEnded = false
		} else {
			if pos >= len(data) || data[pos] != 0xFF {
				return 0, 0, fmt.Errorf("no marker at byte %d", pos)
			}
			for pos < len(data) && data[pos] == 0xFF {
				pos++ // fill bytes
			}
			if pos >= len(data) {
				return 0, 0, errors.New("cut off in a marker: no end-of-image marker (FF D9)")
			}
			marker = data[pos]
			pos++
		}
		if marker == 0xD9 {
			break
		}
		switch {
		case marker == 0x00 || marker == 0x01 || marker >= 0xD0 && marker <= 0xD8:
			return 0, 0, fmt.Errorf("marker FF %02X out of place at byte %d", marker, pos-2)
		case !jpegSegment(marker):
			return 0, 0, fmt.Errorf("unsupported marker FF %02X at byte %d (only baseline and extended sequential 8-bit JPEG are accepted)", marker, pos-2)
		}
		if pos+2 > len(data) {
			return 0, 0, errors.New("cut off in a segment header: no end-of-image marker (FF D9)")
		}
		length := int(binary.BigEndian.Uint16(data[pos:]))
		if length < 2 || pos+length > len(data) {
			return 0, 0, fmt.Errorf("segment FF %02X of %d bytes at byte %d runs past the end: the JPEG is cut off", marker, length, pos-2)
		}
		seg := data[pos+2 : pos+length]
		pos += length
		switch {
		case marker == 0xC0 || marker == 0xC1:
			if frame {
				return 0, 0, errors.New("more than one frame header")
			}
			frame = true
			if comps, width, height, err = parseSOF(seg); err != nil {
				return 0, 0, err
			}
		case marker == 0xC4:
			if err := parseDHT(seg, &huff); err != nil {
				return 0, 0, err
			}
		case marker == 0xDB:
			if err := parseDQT(seg, &quant); err != nil {
				return 0, 0, err
			}
		case marker == 0xDD:
			if len(seg) != 2 {
				return 0, 0, fmt.Errorf("restart interval segment of %d bytes, want 2", len(seg))
			}
			restart = int(binary.BigEndian.Uint16(seg))
		case marker == 0xDA:
			if !frame {
				return 0, 0, errors.New("scan before the frame header")
			}
			for _, c := range comps {
				// A decoder sets up every component at the first scan.
				if !quant[c.tq] {
					return 0, 0, fmt.Errorf("component %d uses quantization table %d, not defined before the scan", c.id, c.tq)
				}
			}
			if err := parseSOS(seg, comps, huff); err != nil {
				return 0, 0, err
			}
			scans++
			if pos, marker, err = skipEntropy(data, pos, restart); err != nil {
				return 0, 0, err
			}
			scanEnded = true
		}
		// Application data and comments (FF E0 to FF EF, FF FE) hold
		// nothing a decoder needs.
	}
	if scans == 0 {
		return 0, 0, errors.New("no scan before the end-of-image marker")
	}
	for _, c := range comps {
		if !c.scanned {
			return 0, 0, fmt.Errorf("component %d is in no scan", c.id)
		}
	}
	for _, b := range data[pos:] {
		if b != 0 {
			return 0, 0, fmt.Errorf("%d bytes after the end-of-image marker", len(data)-pos)
		}
	}
	return width, height, nil
}

// jpegSegment reports whether marker starts a segment checkJPEG reads
// (frame header, Huffman and quantization tables, restart interval, scan)
// or skips (application data, comment).
func jpegSegment(marker byte) bool {
	switch {
	case marker == 0xC0, marker == 0xC1, marker == 0xC4, marker == 0xDB, marker == 0xDD, marker == 0xDA, marker == 0xFE:
		return true
	}
	return marker >= 0xE0 && marker <= 0xEF
}

// jpegComponent is one component of a JPEG frame header.
type jpegComponent struct {
	id      byte
	tq      byte
	scanned bool
}

// parseSOF checks a baseline or extended sequential frame header. The
// quantization tables it names are checked at the first scan, before
// which they may still be defined.
func parseSOF(seg []byte) ([]jpegComponent, int, int, error) {
	if len(seg) < 6 {
		return nil, 0, 0, fmt.Errorf("frame header of %d bytes", len(seg))
	}
	if seg[0] != 8 {
		return nil, 0, 0, fmt.Errorf("%d-bit samples (only 8-bit JPEG is accepted)", seg[0])
	}
	height, width := int(binary.BigEndian.Uint16(seg[1:])), int(binary.BigEndian.Uint16(seg[3:]))
	n := int(seg[5])
	if height == 0 || width == 0 {
		return nil, 0, 0, fmt.Errorf("frame header of %dx%d pixels", width, height)
	}
	if n != 1 && n != 3 {
		return nil, 0, 0, fmt.Errorf("%d components (want 1 or 3)", n)
	}
	if len(seg) != 6+3*n {
		return nil, 0, 0, fmt.Errorf("frame header of %d bytes for %d components", len(seg), n)
	}
	comps := make([]jpegComponent, n)
	blocks, maxH, maxV := 0, 1, 1
	for i := range n {
		c := seg[6+3*i:]
		maxH, maxV = max(maxH, int(c[1]>>4)), max(maxV, int(c[1]&15))
	}
	for i := range n {
		c := seg[6+3*i:]
		h, v, tq := int(c[1]>>4), int(c[1]&15), c[2]
		if h < 1 || h > 4 || v < 1 || v > 4 || tq > 3 || maxH%h != 0 || maxV%v != 0 {
			// Decoders upsample by whole factors only.
			return nil, 0, 0, fmt.Errorf("component %d: sampling %dx%d (of %dx%d), quantization table %d", c[0], h, v, maxH, maxV, tq)
		}
		for _, o := range comps[:i] {
			if o.id == c[0] {
				return nil, 0, 0, fmt.Errorf("component %d twice in the frame header", c[0])
			}
		}
		if n == 1 {
			h, v = 1, 1 // a single component is not interleaved
		}
		blocks += h * v
		comps[i] = jpegComponent{id: c[0], tq: tq}
	}
	if blocks > 10 {
		return nil, 0, 0, fmt.Errorf("%d blocks per MCU (at most 10)", blocks)
	}
	return comps, width, height, nil
}

// parseDHT checks Huffman tables and marks them defined.
func parseDHT(seg []byte, huff *[2][4]bool) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			//lint:ignore ST1005 Huffman is a proper name
			return errors.New("Huffman table cut off")
		}
		class, id := seg[0]>>4, seg[0]&15
		if class > 1 || id > 3 {
			//lint:ignore ST1005 Huffman is a proper name
			return fmt.Errorf("Huffman table class %d id %d", class, id)
		}
		total, code := 0, 0
		for l := 1; l <= 16; l++ {
			count := int(seg[l])
			total += count
			code += count
			if code > 1<<l {
				//lint:ignore ST1005 Huffman is a proper name
				return errors.New("Huffman code lengths that make no prefix code")
			}
			code <<= 1
		}
		if total == 0 || total > 256 || len(seg) < 17+total {
			//lint:ignore ST1005 Huffman is a proper name
			return fmt.Errorf("Huffman table of %d symbols", total)
		}
		if class == 0 {
			for _, sym := range seg[17 : 17+total] {
				if sym > 15 {
					return fmt.Errorf("DC Huffman symbol %d (at most 15)", sym)
				}
			}
		}
		huff[class][id] = true
		seg = seg[17+total:]
	}
	return nil
}

// parseDQT checks quantization tables and marks them defined.
func parseDQT(seg []byte, quant *[4]bool) error {
	for len(seg) > 0 {
		precision, id := seg[0]>>4, seg[0]&15
		size := 64
		if precision == 1 {
			size = 128
		}
		if precision > 1 || id > 3 || len(seg) < 1+size {
			return fmt.Errorf("quantization table precision %d id %d of %d bytes", precision, id, len(seg)-1)
		}
		for i := 0; i < 64; i++ {
			q := int(seg[1+i])
			if precision == 1 {
				q = int(binary.BigEndian.Uint16(seg[1+2*i:]))
			}
			if q == 0 {
				return fmt.Errorf("quantization table %d holds a zero", id)
			}
		}
		quant[id] = true
		seg = seg[1+size:]
	}
	return nil
}

// parseSOS checks a sequential scan header against the frame's components
// and the tables defined, and marks its components scanned.
func parseSOS(seg []byte, comps []jpegComponent, huff [2][4]bool) error {
	if len(seg) < 1 {
		return errors.New("empty scan header")
	}
	n := int(seg[0])
	if n < 1 || n > len(comps) || len(seg) != 4+2*n {
		return fmt.Errorf("scan header of %d bytes for %d components", len(seg), n)
	}
	for i := range n {
		id, td, ta := seg[1+2*i], seg[2+2*i]>>4, seg[2+2*i]&15
		k := -1
		for j := range comps {
			if comps[j].id == id {
				k = j
			}
		}
		switch {
		case k < 0:
			return fmt.Errorf("scan of component %d, not in the frame header", id)
		case comps[k].scanned:
			return fmt.Errorf("component %d in two scans", id)
		case td > 3 || ta > 3 || !huff[0][td] || !huff[1][ta]:
			return fmt.Errorf("scan of component %d uses Huffman tables DC %d and AC %d, not both defined", id, td, ta)
		}
		comps[k].scanned = true
	}
	if ss, se, a := seg[1+2*n], seg[2+2*n], seg[3+2*n]; ss != 0 || se != 63 || a != 0 {
		return fmt.Errorf("scan of coefficients %d to %d, approximation %d (a sequential scan covers 0 to 63)", ss, se, a)
	}
	return nil
}

// skipEntropy walks the entropy-coded data of a scan from pos to the marker
// that ends it, which it returns with the position after it. Inside the
// data a 0xFF byte is stuffed (FF 00) or a restart marker RSTn, in sequence
// and only with a restart interval.
func skipEntropy(data []byte, pos, restart int) (int, byte, error) {
	start, next := pos, 0
	for {
		i := pos
		for i < len(data) && data[i] != 0xFF {
			i++
		}
		if i+1 >= len(data) {
			return 0, 0, errors.New("cut off in a scan: no end-of-image marker (FF D9)")
		}
		m := data[i+1]
		switch {
		case m == 0x00:
			pos = i + 2
		case m >= 0xD0 && m <= 0xD7:
			if restart == 0 || int(m-0xD0) != next {
				return 0, 0, fmt.Errorf("restart marker FF %02X out of sequence at byte %d", m, i)
			}
			next = (next + 1) % 8
			pos = i + 2
		case m == 0xFF:
			// Fill bytes before a marker.
			j := i + 1
			for j < len(data) && data[j] == 0xFF {
				j++
			}
			if j >= len(data) {
				return 0, 0, errors.New("cut off in a scan: no end-of-image marker (FF D9)")
			}
			if data[j] == 0x00 || data[j] >= 0xD0 && data[j] <= 0xD7 {
				return 0, 0, fmt.Errorf("fill bytes before FF %02X at byte %d", data[j], j-1)
			}
			if j-1 == start {
				return 0, 0, errors.New("a scan without data")
			}
			return j + 1, data[j], nil
		default:
			if i == start {
				return 0, 0, errors.New("a scan without data")
			}
			return i + 2, m, nil
		}
	}
}
