package synth

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestVerifySequence(t *testing.T) {
	tests := []struct {
		name    string
		indices []int
		want    SequenceReport
	}{
		{"in order", []int{0, 1, 2, 3},
			SequenceReport{SequenceOK: true, Frames: 4, Missing: []int{}, Duplicated: []int{}, OutOfOrder: []int{}, Undecodable: []int{}}},
		{"single frame", []int{0},
			SequenceReport{SequenceOK: true, Frames: 1, Missing: []int{}, Duplicated: []int{}, OutOfOrder: []int{}, Undecodable: []int{}}},
		{"empty", nil,
			SequenceReport{SequenceOK: false, Frames: 0, Missing: []int{}, Duplicated: []int{}, OutOfOrder: []int{}, Undecodable: []int{}}},
		{"missing", []int{0, 1, 4, 5},
			SequenceReport{Frames: 4, Missing: []int{2, 3}, Duplicated: []int{}, OutOfOrder: []int{}, Undecodable: []int{}}},
		{"first frames missing", []int{2, 3},
			SequenceReport{Frames: 2, Missing: []int{0, 1}, Duplicated: []int{}, OutOfOrder: []int{}, Undecodable: []int{}}},
		{"duplicated", []int{0, 1, 1, 2, 2, 2, 3},
			SequenceReport{Frames: 7, Missing: []int{}, Duplicated: []int{1, 2}, OutOfOrder: []int{}, Undecodable: []int{}}},
		{"late repeat is a duplicate only", []int{0, 1, 2, 1, 3},
			SequenceReport{Frames: 5, Missing: []int{}, Duplicated: []int{1}, OutOfOrder: []int{}, Undecodable: []int{}}},
		{"out of order", []int{0, 2, 1, 3, 5, 4},
			SequenceReport{Frames: 6, Missing: []int{}, Duplicated: []int{}, OutOfOrder: []int{1, 4}, Undecodable: []int{}}},
		{"reversed", []int{2, 1, 0},
			SequenceReport{Frames: 3, Missing: []int{}, Duplicated: []int{}, OutOfOrder: []int{1, 0}, Undecodable: []int{}}},
		{"undecodable", []int{0, -1, 2, 3, -1},
			SequenceReport{Frames: 5, Missing: []int{1}, Duplicated: []int{}, OutOfOrder: []int{}, Undecodable: []int{1, 4}}},
		{"any negative is undecodable", []int{0, -7, 1},
			SequenceReport{Frames: 3, Missing: []int{}, Duplicated: []int{}, OutOfOrder: []int{}, Undecodable: []int{1}}},
		{"nothing decoded", []int{-1, -1},
			SequenceReport{Frames: 2, Missing: []int{}, Duplicated: []int{}, OutOfOrder: []int{}, Undecodable: []int{0, 1}}},
		{"everything at once", []int{0, 3, 3, 1, -1, 6},
			SequenceReport{Frames: 6, Missing: []int{2, 4, 5}, Duplicated: []int{3}, OutOfOrder: []int{1}, Undecodable: []int{4}}},
	}
	for _, tt := range tests {
		got := VerifySequence(tt.indices)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: VerifySequence(%v) =\n%+v, want\n%+v", tt.name, tt.indices, got, tt.want)
		}
	}
}

func TestSequenceReportJSON(t *testing.T) {
	data, err := json.Marshal(VerifySequence([]int{0, 2, 2, -1}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"sequence_ok":false,"frames":4,"missing":[1],"duplicated":[2],"out_of_order":[],"undecodable":[3]}`
	if string(data) != want {
		t.Errorf("JSON = %s, want %s", data, want)
	}
	var back SequenceReport
	if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back, VerifySequence([]int{0, 2, 2, -1})) {
		t.Errorf("unmarshal = %+v, %v", back, err)
	}
}
