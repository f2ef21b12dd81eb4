package bgr

import (
	"strings"
	"testing"
)

// mask renders which pixels of m differ from the background colour 0 as
// rows of '#' and '.', so drawing tests compare against a picture a reader
// can check by eye.
func mask(m Image) string {
	var b strings.Builder
	for y := 0; y < m.Height; y++ {
		for x := 0; x < m.Width; x++ {
			bb, g, r := m.At(x, y)
			if bb|g|r != 0 {
				b.WriteByte('#')
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func picture(rows ...string) string { return strings.Join(rows, "\n") + "\n" }

func TestNewValid(t *testing.T) {
	tests := []struct {
		name string
		img  Image
		want bool
	}{
		{"new", New(4, 3), true},
		{"zero value", Image{}, false},
		{"zero width", New(0, 3), false},
		{"short pix", Image{Width: 2, Height: 2, Pix: make([]byte, 11)}, false},
		{"long pix", Image{Width: 2, Height: 2, Pix: make([]byte, 13)}, false},
		{"negative", Image{Width: -1, Height: -3, Pix: make([]byte, 9)}, false},
	}
	for _, tt := range tests {
		if got := tt.img.Valid(); got != tt.want {
			t.Errorf("%s: Valid() = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := len(New(4, 3).Pix); got != 36 {
		t.Errorf("New(4, 3) has %d bytes, want 36", got)
	}
}

func TestNewNegativePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(-1, 2) did not panic")
		}
	}()
	New(-1, 2)
}

func TestSetAtLayout(t *testing.T) {
	m := New(3, 2)
	m.Set(2, 1, 10, 20, 30)
	if b, g, r := m.At(2, 1); b != 10 || g != 20 || r != 30 {
		t.Errorf("At(2,1) = %d,%d,%d, want 10,20,30", b, g, r)
	}
	// The layout is the contract with OpenCV: B first, rows packed.
	if got := m.Pix[(1*3+2)*3:]; got[0] != 10 || got[1] != 20 || got[2] != 30 {
		t.Errorf("Pix tail = %v, want [10 20 30]", got)
	}
	for i, v := range m.Pix[:15] {
		if v != 0 {
			t.Fatalf("Pix[%d] = %d, Set wrote outside its pixel", i, v)
		}
	}
}

func TestOutOfBoundsPanics(t *testing.T) {
	m := New(3, 2)
	for _, p := range [][2]int{{-1, 0}, {3, 0}, {0, 2}, {0, -1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("At(%d,%d) did not panic", p[0], p[1])
				}
			}()
			m.At(p[0], p[1])
		}()
	}
}

func TestGray(t *testing.T) {
	m := New(4, 1)
	m.Set(0, 0, 0, 0, 255)
	m.Set(1, 0, 0, 255, 0)
	m.Set(2, 0, 255, 0, 0)
	m.Set(3, 0, 255, 255, 255)
	want := []uint8{76, 150, 29, 255}
	for x, w := range want {
		if got := m.Gray(x, 0); got != w {
			t.Errorf("Gray(%d) = %d, want %d", x, got, w)
		}
	}
}

func TestFillRectClipping(t *testing.T) {
	tests := []struct {
		name           string
		x0, y0, x1, y1 int
		want           string
	}{
		{"inside", 1, 1, 3, 2, picture(".....", ".##..", ".....", ".....")},
		{"clipped top left", -2, -5, 2, 1, picture("##...", ".....", ".....", ".....")},
		{"clipped bottom right", 3, 2, 99, 99, picture(".....", ".....", "...##", "...##")},
		{"covers all", -1, -1, 6, 5, picture("#####", "#####", "#####", "#####")},
		{"empty", 2, 2, 2, 3, picture(".....", ".....", ".....", ".....")},
		{"inverted", 3, 3, 1, 1, picture(".....", ".....", ".....", ".....")},
		{"outside", 5, 0, 9, 4, picture(".....", ".....", ".....", ".....")},
	}
	for _, tt := range tests {
		m := New(5, 4)
		m.FillRect(tt.x0, tt.y0, tt.x1, tt.y1, 1, 2, 3)
		if got := mask(m); got != tt.want {
			t.Errorf("%s: got\n%swant\n%s", tt.name, got, tt.want)
		}
	}
}

func TestFillColour(t *testing.T) {
	m := New(2, 2)
	m.Fill(7, 8, 9)
	for i := 0; i < len(m.Pix); i += 3 {
		if m.Pix[i] != 7 || m.Pix[i+1] != 8 || m.Pix[i+2] != 9 {
			t.Fatalf("pixel %d = %v, want [7 8 9]", i/3, m.Pix[i:i+3])
		}
	}
}

func TestFillCircle(t *testing.T) {
	m := New(7, 7)
	m.FillCircle(3.5, 3.5, 2.5, 255, 255, 255)
	want := picture(
		".......",
		"..###..",
		".#####.",
		".#####.",
		".#####.",
		"..###..",
		".......",
	)
	if got := mask(m); got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}

func TestFillEllipseClippedAndDegenerate(t *testing.T) {
	m := New(6, 3)
	m.FillEllipse(0, 1.5, 3, 1.5, 1, 1, 1)
	want := picture(
		"##....",
		"###...",
		"##....",
	)
	if got := mask(m); got != want {
		t.Errorf("clipped ellipse: got\n%swant\n%s", got, want)
	}
	n := New(4, 4)
	n.FillEllipse(2, 2, 0, 3, 1, 1, 1)
	n.FillEllipse(2, 2, 3, -1, 1, 1, 1)
	if got := mask(n); strings.Contains(got, "#") {
		t.Errorf("degenerate ellipses painted:\n%s", got)
	}
}

func TestFillLine(t *testing.T) {
	tests := []struct {
		name                  string
		x0, y0, x1, y1, width float64
		want                  string
	}{
		{"horizontal", 1, 1.5, 5, 1.5, 1, picture(
			"......",
			".####.",
			"......",
			"......",
		)},
		{"diagonal", 0.5, 0.5, 3.5, 3.5, 1, picture(
			"#.....",
			".#....",
			"..#...",
			"...#..",
		)},
		{"thin is widened to one pixel", 0, 2.5, 6, 2.5, 0.1, picture(
			"......",
			"......",
			"######",
			"......",
		)},
		{"clipped", -10, 0.5, 20, 0.5, 1, picture(
			"######",
			"......",
			"......",
			"......",
		)},
		{"a point is a disc", 3, 2, 3, 2, 4, picture(
			"..##..",
			".####.",
			".####.",
			"..##..",
		)},
	}
	for _, tt := range tests {
		m := New(6, 4)
		m.FillLine(tt.x0, tt.y0, tt.x1, tt.y1, tt.width, 9, 9, 9)
		if got := mask(m); got != tt.want {
			t.Errorf("%s: got\n%swant\n%s", tt.name, got, tt.want)
		}
	}
}

func TestCloneIsIndependent(t *testing.T) {
	m := New(2, 1)
	c := m.Clone()
	c.Set(0, 0, 1, 2, 3)
	if b, _, _ := m.At(0, 0); b != 0 {
		t.Error("drawing on the clone changed the original")
	}
	if c.Width != 2 || c.Height != 1 || !c.Valid() {
		t.Errorf("clone = %dx%d valid=%v", c.Width, c.Height, c.Valid())
	}
}
