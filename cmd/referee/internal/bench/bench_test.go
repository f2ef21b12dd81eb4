package bench

import (
	"reflect"
	"testing"
)

func TestMedianRunPicksTheMedianOrTheFailure(t *testing.T) {
	ok := func(fps float64) Row { return Row{FPS: fps, Mbps: fps / 10, Verified: true} }
	for _, tc := range []struct {
		name string
		runs []Row
		want Row
	}{
		{"one", []Row{ok(5)}, Row{FPS: 5, Mbps: 0.5, Verified: true, Repeats: 1, FPSAll: []float64{5}}},
		{"three", []Row{ok(30), ok(10), ok(20)}, Row{FPS: 20, Mbps: 2, Verified: true, Repeats: 3, FPSAll: []float64{30, 10, 20}}},
		{"two: the lower", []Row{ok(30), ok(10)}, Row{FPS: 10, Mbps: 1, Verified: true, Repeats: 2, FPSAll: []float64{30, 10}}},
		{"a failure shows", []Row{ok(30), {FPS: 40, Problem: "lost frame 3"}, ok(20)},
			Row{FPS: 40, Problem: "lost frame 3", Repeats: 3, FPSAll: []float64{30, 40, 20}}},
	} {
		if got := medianRun(tc.runs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: medianRun = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestListeningAddr(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`time=2026-01-01T00:00:00Z level=INFO msg=listening addr=127.0.0.1:41234 version=0.1.0 data_dir=/tmp/x`, "127.0.0.1:41234"},
		{`time=2026-01-01T00:00:00Z level=INFO msg=listening addr=[::1]:8080`, "[::1]:8080"},
		{`time=2026-01-01T00:00:00Z level=INFO msg="listening soon" addr=127.0.0.1:1`, ""},
		{`time=2026-01-01T00:00:00Z level=INFO msg=listening addr=nonsense`, ""},
		{`time=2026-01-01T00:00:00Z level=INFO msg=created addr=127.0.0.1:1`, ""},
	} {
		if got := listeningAddr(tc.line); got != tc.want {
			t.Errorf("listeningAddr(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}
