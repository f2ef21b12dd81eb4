package motion

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/synth"
	"github.com/referee-project/referee/pipeline/videoio"
)

func TestDebugArt(t *testing.T) {
	sc, _ := synth.ScenarioByName("both-pause-left-resumes")
	dir := "/tmp/mdbg/art"
	os.MkdirAll(dir, 0o755)
	in := film(t, dir, sc, variant{".avi", 15, 1280, 720, 8})
	v, err := (&Analyzer{}).Analyze(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(v, "", " ")
	os.WriteFile(dir+"/v.json", b, 0o644)
	r, _ := videoio.OpenFile(dir + "/overlay.avi")
	var img bgr.Image
	for i := 0; i <= 38; i++ {
		r.Read(&img)
	}
	p, _ := videoio.EncodePNG(img)
	os.WriteFile(dir+"/ov38.png", p, 0o644)
}
