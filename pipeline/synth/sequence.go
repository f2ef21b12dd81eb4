package synth

import "slices"

// SequenceReport says how a received run of counter frames differs from the
// expected 0, 1, ..., N-1. Its slices are never nil, so that JSON shows []
// rather than null.
type SequenceReport struct {
	// SequenceOK is true when at least one frame arrived and every frame
	// decoded, each index 0..N-1 arrived exactly once and in order.
	SequenceOK bool `json:"sequence_ok"`
	// Frames is how many frames were received, decodable or not.
	Frames int `json:"frames"`
	// Missing lists, ascending, the indices below the largest decoded one
	// that no frame decoded to. An undecodable frame may have carried one
	// of them, but nothing proves it arrived, so it is listed.
	Missing []int `json:"missing"`
	// Duplicated lists, ascending, the indices decoded more than once.
	Duplicated []int `json:"duplicated"`
	// OutOfOrder lists, in arrival order, the indices that arrived after a
	// larger one, counting only their first arrival (repeats are
	// Duplicated).
	OutOfOrder []int `json:"out_of_order"`
	// Undecodable lists the positions (0-based, in arrival order) of the
	// frames whose code could not be read.
	Undecodable []int `json:"undecodable"`
}

// VerifySequence checks the indices decoded from received frames, in
// arrival order, against the sequence 0..N-1, where N is one more than the
// largest decoded index. A negative entry (use -1) marks a frame whose code
// could not be read. Frames lost after the last decoded one cannot be seen
// here: compare Frames with the number sent.
func VerifySequence(indices []int) SequenceReport {
	rep := SequenceReport{
		Frames:      len(indices),
		Missing:     []int{},
		Duplicated:  []int{},
		OutOfOrder:  []int{},
		Undecodable: []int{},
	}
	seen := map[int]int{}
	highest := -1
	for pos, idx := range indices {
		if idx < 0 {
			rep.Undecodable = append(rep.Undecodable, pos)
			continue
		}
		seen[idx]++
		switch {
		case seen[idx] == 2:
			rep.Duplicated = append(rep.Duplicated, idx)
		case seen[idx] == 1 && idx < highest:
			rep.OutOfOrder = append(rep.OutOfOrder, idx)
		}
		highest = max(highest, idx)
	}
	for i := 0; i < highest; i++ {
		if seen[i] == 0 {
			rep.Missing = append(rep.Missing, i)
		}
	}
	slices.Sort(rep.Duplicated)
	rep.SequenceOK = rep.Frames > 0 && len(rep.Missing) == 0 && len(rep.Duplicated) == 0 &&
		len(rep.OutOfOrder) == 0 && len(rep.Undecodable) == 0
	return rep
}
