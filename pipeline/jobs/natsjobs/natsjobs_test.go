package natsjobs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/referee-project/referee/pipeline/jobs"
	"github.com/referee-project/referee/pipeline/jobs/natsjobs/natstest"
)

// open starts an embedded JetStream and returns a connection to it named
// name, and a function that opens more.
func open(t testing.TB) func(name string) *Conn {
	t.Helper()
	ns := natstest.Start(t, -1, t.TempDir())
	return func(name string) *Conn {
		c, err := Open(Options{URL: ns.ClientURL(), Name: name, AckWait: 600 * time.Millisecond, ReconnectWait: 100 * time.Millisecond, OpTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
}

func file(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func next(t *testing.T, c *Conn) *delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("%s: no job: %v", c.Name(), err)
	}
	return d.(*delivery)
}

// TestTwoTriesOneResult has a job handed to a second worker while the
// first still holds it (its heartbeat stopped, as in a long pause): both
// complete, one result is kept, and the loser's artifacts are removed.
func TestTwoTriesOneResult(t *testing.T) {
	conn := open(t)
	serve, a, b := conn("serve"), conn("a"), conn("b")
	ctx := context.Background()
	in := t.TempDir()
	inputs := map[string]string{"video.avi": file(t, in, "video.avi", "video"), jobs.SignalFile: file(t, in, "signal.txt", "signal")}
	key, err := serve.Submit(ctx, jobs.Spec{SessionID: "s1", Video: "video.avi"}, inputs, nil)
	if err != nil || key != "s1" {
		t.Fatalf("submit: %q, %v", key, err)
	}
	// The same session id again is another phrase.
	if key2, err := serve.Submit(ctx, jobs.Spec{SessionID: "s1", Video: "video.avi"}, inputs, nil); err != nil || key2 != "s1-2" {
		t.Fatalf("second phrase of s1: %q, %v; want s1-2", key2, err)
	}

	da := next(t, a)
	if da.Spec().Key != "s1" || da.Attempt() != 1 {
		t.Fatalf("a got %+v, try %d", da.Spec(), da.Attempt())
	}
	got, err := da.Fetch(ctx, t.TempDir())
	if err != nil || len(got) != 2 {
		t.Fatalf("fetch: %v, %v", got, err)
	}
	da.stop() // a pauses: no heartbeat; the ack wait hands the job to b
	db := next(t, b)
	for db.Spec().Key != "s1" {
		db.Release()
		db = next(t, b)
	}
	if db.Attempt() != 2 {
		t.Fatalf("b got try %d, want 2", db.Attempt())
	}
	outB := t.TempDir()
	file(t, outB, "result.json", `{"by":"b"}`)
	if err := db.Complete(ctx, []byte(`{"by":"b"}`), outB); err != nil {
		t.Fatal(err)
	}
	outA := t.TempDir()
	file(t, outA, "result.json", `{"by":"a"}`)
	if err := da.Complete(ctx, []byte(`{"by":"a"}`), outA); err != nil {
		t.Fatal(err)
	}
	rec, _, err := serve.Record(ctx, "s1")
	if err != nil || rec.State != StateDone || rec.Worker != "b" || string(rec.Result) != `{"by":"b"}` || rec.Prefix != "s1/out/2/" {
		t.Fatalf("record %+v, %v: want b's result", rec, err)
	}
	h, err := serve.handles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.files.GetInfo(ctx, "s1/out/1/result.json"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("the losing try's artifact: %v, want it removed", err)
	}
	out, err := serve.Wait(ctx, "s1", t.TempDir(), nil)
	if err != nil || string(out.Result) != `{"by":"b"}` || out.Worker != "b" || len(out.Files) != 0 {
		t.Errorf("wait: %+v, %v", out, err)
	}
	for _, name := range []string{"s1/in/video.avi", "s1/in/signal.txt"} {
		if _, err := h.files.GetInfo(ctx, name); !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Errorf("input %s after the result was taken: %v, want it removed", name, err)
		}
	}
	if !slices.Equal(rec.Files, []string{"result.json"}) {
		t.Errorf("artifacts %q", rec.Files)
	}
}

// TestTransient tells what is waited for from what fails at once.
func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008}, true},
		{&jetstream.APIError{Code: 503, ErrorCode: errCodeStoreFailed}, false},
		{&jetstream.APIError{Code: 400, ErrorCode: 10071}, false},
		{&fileError{os.ErrNotExist}, false},
		{jetstream.ErrKeyNotFound, false},
		{errQueueFull, true},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
