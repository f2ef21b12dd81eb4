package webtest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/referee-project/referee/pipeline"
	"github.com/referee-project/referee/pipeline/jobs/natsjobs"
	"github.com/referee-project/referee/pipeline/jobs/natsjobs/natstest"
	"github.com/referee-project/referee/pipeline/motion"
	"github.com/referee-project/referee/server"
	"github.com/referee-project/referee/server/worker"
)

// clusterNode starts a server that hands its phrases to the JetStream at
// url, named name.
func clusterNode(t *testing.T, url, name string) *reviewServer {
	t.Helper()
	conn, err := natsjobs.Open(natsjobs.Options{URL: url, Name: name, OpTimeout: 2 * time.Second, PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rs := launch(t, func(cfg *server.Config) {
		cfg.Logger = cfg.Logger.With("node", name)
		cfg.Jobs = conn
	})
	t.Cleanup(func() {
		rs.srv.Close()
		conn.Close()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, rs.logs)
		}
	})
	return rs
}

// TestClusterListInBrowser streams a phrase through one node of a
// cluster and watches the list page of the other: the phrase appears,
// analysed, without a reload, and a review recorded on the first node
// shows there.
func TestClusterListInBrowser(t *testing.T) {
	ns := natstest.Start(t, -1, t.TempDir())
	a, b := clusterNode(t, ns.ClientURL(), "serve-1"), clusterNode(t, ns.ClientURL(), "serve-2")
	wconn, err := natsjobs.Open(natsjobs.Options{URL: ns.ClientURL(), Name: "worker-1", OpTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() {
		stopped <- worker.Run(ctx, worker.Config{Source: wconn, DataDir: t.TempDir(), Workers: 1, Analyzers: map[string]pipeline.Analyzer{"motion": &motion.Analyzer{}}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("worker: %v", err)
		}
		wconn.Close()
	})

	tab := tab(t)
	do(t, tab, "open serve-2's list and log in", append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(b.base + "/")}, append(login(b.token),
		waitJS(`document.getElementById("empty") && !document.getElementById("empty").hidden`),
		chromedp.Evaluate[chromedp.Void](`window.stillTheSamePage = true`))...)...)
	p := film(t, "beat-left-attack-right-counter", 15, 320, 240)
	s := a.stream(t, "bout1", p)
	s.frames(p, 0, len(p.frames))
	res := s.finish(p)
	row := `document.querySelector('tr[data-id="bout1"]')`
	do(t, tab, "see serve-1's phrase done on serve-2's list", waitJS(row+` && `+row+`.querySelector(".status").textContent === "done"`))
	if !eval[bool](t, tab, `window.stillTheSamePage === true`) {
		t.Error("the list page was reloaded")
	}
	if winner := text(t, tab, `tr[data-id="bout1"] td.winner`); winner != res["winner"] {
		t.Errorf("serve-2's list shows the winner %q, the result says %q", winner, res["winner"])
	}
	if err := postReview(a, "bout1", `{"call":"left","referee":"Ann"}`); err != nil {
		t.Fatalf("review on serve-1: %v", err)
	}
	do(t, tab, "see serve-1's review on serve-2's list", waitJS(row+` && `+row+`.querySelector("td.reviewed") && `+row+`.querySelector("td.reviewed").textContent === "left (Ann)"`))
}
