package protocol

import (
	"fmt"
	"time"
)

// MaxSessionIDLength is the longest session id accepted.
const MaxSessionIDLength = 128

// ValidSessionID reports whether id is 1 to 128 characters of
// [A-Za-z0-9_-]. Servers refuse any other id, since ids name directories.
func ValidSessionID(id string) bool {
	if len(id) == 0 || len(id) > MaxSessionIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// NewSessionID returns an id in the capture box's style,
// "20251106_170116_phrase04", from the local time t and a phrase number.
func NewSessionID(t time.Time, phrase int) string {
	return fmt.Sprintf("%s_phrase%02d", t.Format("20060102_150405"), phrase)
}

// Health is the body of GET /health.
type Health struct {
	Status         string   `json:"status"`
	Version        string   `json:"version"`
	UptimeSeconds  float64  `json:"uptime_seconds"`
	ActiveSessions int      `json:"active_sessions"`
	Protocols      []string `json:"protocols"`
}

// Stats is the body of GET /streaming/stats. TotalMemoryMB counts bytes held
// in RAM for frames, not frames spooled to disk.
type Stats struct {
	ActiveSessions int                     `json:"active_sessions"`
	MaxSessions    int                     `json:"max_sessions"`
	TotalMemoryMB  float64                 `json:"total_memory_mb"`
	MaxMemoryMB    float64                 `json:"max_memory_mb"`
	TotalFrames    int                     `json:"total_frames"`
	Sessions       map[string]SessionStats `json:"sessions"`
}

// SessionStats describes one session in Stats and in results.
type SessionStats struct {
	SessionID           string  `json:"session_id"`
	FPS                 float64 `json:"fps"`
	Width               int     `json:"width"`
	Height              int     `json:"height"`
	ExpectedFrames      int     `json:"expected_frames"`
	FramesReceived      int     `json:"frames_received"`
	TotalFramesReceived int     `json:"total_frames_received"`
	DuplicateFrames     int     `json:"duplicate_frames"`
	OutOfOrderFrames    int     `json:"out_of_order_frames"`
	MissingFrames       int     `json:"missing_frames"`
	HasSignal           bool    `json:"has_signal"`
	DurationSeconds     float64 `json:"duration_seconds"`
	IdleSeconds         float64 `json:"idle_seconds"`
	MemoryMB            float64 `json:"memory_mb"`
	Completed           bool    `json:"completed"`
	Aborted             bool    `json:"aborted"`
	Protocol            string  `json:"protocol"`
	BytesReceived       int64   `json:"bytes_received"`
}

// FrameRanges compacts frame numbers, sorted ascending, into the inclusive
// ranges of SessionStarted.Have; repeated numbers are taken once.
func FrameRanges(sorted []int) [][2]int {
	var out [][2]int
	for _, n := range sorted {
		if k := len(out); k > 0 && n <= out[k-1][1]+1 {
			out[k-1][1] = max(out[k-1][1], n)
			continue
		}
		out = append(out, [2]int{n, n})
	}
	return out
}

// RangesContain reports whether frame n is in one of the inclusive ranges
// of SessionStarted.Have.
func RangesContain(ranges [][2]int, n int) bool {
	for _, r := range ranges {
		if r[0] <= n && n <= r[1] {
			return true
		}
	}
	return false
}
