package protocol

import (
	"slices"
	"strings"
)

// Frame encodings.
const (
	EncodingJPEG = "jpeg"
	EncodingPNG  = "png"
	EncodingRaw  = "raw"
)

// encodings is the one table of frame encodings, indexed by their code:
// the byte that names the encoding in a v2 frame header and in a record
// of the server's spool. 0 is never a code.
var encodings = [...]string{1: EncodingJPEG, 2: EncodingPNG, 3: EncodingRaw}

// Encodings returns the names of the frame encodings, in code order.
func Encodings() []string { return slices.Clone(encodings[1:]) }

// EncodingChoices returns the names of the frame encodings for a person,
// in code order: "jpeg, png or raw". Messages that refuse an encoding say
// what is accepted with it.
func EncodingChoices() string {
	names := encodings[1:]
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// EncodingCode returns the code of the named encoding, and false if name
// is no frame encoding.
func EncodingCode(name string) (byte, bool) {
	if name == "" {
		return 0, false
	}
	i := slices.Index(encodings[:], name)
	return byte(max(i, 0)), i > 0
}

// KnownEncoding reports whether name is a frame encoding.
func KnownEncoding(name string) bool {
	_, ok := EncodingCode(name)
	return ok
}

// EncodingName returns the name of the encoding with the given code, and
// false if no encoding has it.
func EncodingName(code byte) (string, bool) {
	if int(code) >= len(encodings) || encodings[code] == "" {
		return "", false
	}
	return encodings[code], true
}
