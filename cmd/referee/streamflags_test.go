package main

import "testing"

// TestStreamRejectsBadFlags: every bad flag value of stream is a usage
// error, one line naming the flag, before anything is opened.
func TestStreamRejectsBadFlags(t *testing.T) {
	base := []string{"stream", "http://127.0.0.1:1", "--video", "v.avi", "--signal", "s.txt"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--encoding", "gif"}, `--encoding "gif": want jpeg, png or raw`},
		{[]string{"--jpeg-quality", "0"}, "--jpeg-quality 0: want 1 to 100"},
		{[]string{"--jpeg-quality", "101"}, "--jpeg-quality 101: want 1 to 100"},
		{[]string{"--protocol", "v3"}, `--protocol "v3": want v1 or v2`},
		{[]string{"--fps", "-1"}, "--fps -1: want 0 (as fast as possible) or a positive rate"},
		{[]string{"--fps", "NaN"}, "--fps NaN: want 0 (as fast as possible) or a positive rate"},
		{[]string{"--session-id", "../x"}, `--session-id "../x": want 1 to 128 characters of A-Z, a-z, 0-9, _ and -`},
		{[]string{"--timeout", "0"}, "--timeout 0s: want a positive duration"},
		{[]string{"--resume-tries", "-1"}, "--resume-tries -1: want 0 (never resume) or more"},
		{[]string{"--camera", "0"}, "give --video FILE or --camera N, not both"},
	} {
		code, out, errs := run(t, append(base, tc.args...)...)
		if code != exitUsage || out != "" || errs != "referee: "+tc.want+"\n" {
			t.Errorf("stream %q: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errs, exitUsage, tc.want)
		}
	}
}
