package pose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/referee-project/referee/pipeline/avi"
	"github.com/referee-project/referee/pipeline/bgr"
	"github.com/referee-project/referee/pipeline/videoio"
)

// frameQuality is the JPEG quality frames of other encodings are written
// at: high enough that a pose estimator sees what the camera saw.
const frameQuality = 90

// FrameName is the file name of frame i in a {frames} directory.
func FrameName(i int) string { return fmt.Sprintf("%06d.jpg", i) }

// WriteFrames writes the frames of the video at path into dir (created if
// missing) as 000000.jpg, 000001.jpg, ... and returns how many it wrote.
// The frames of a Motion-JPEG AVI are copied as the JPEGs they are,
// without decoding; any other video OpenCV reads is decoded and each frame
// encoded once.
func WriteFrames(ctx context.Context, path, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("create the frames directory: %w", err)
	}
	n, err := copyMJPEG(ctx, path, dir)
	if errors.Is(err, avi.ErrNotMJPEG) {
		n, err = encodeFrames(ctx, path, dir)
	}
	if err == nil && n == 0 {
		err = fmt.Errorf("video %s has no frames", path)
	}
	return n, err
}

// copyMJPEG copies the JPEG chunks of a Motion-JPEG AVI into dir. It
// returns an error wrapping avi.ErrNotMJPEG, having written nothing, if
// the file is not one.
func copyMJPEG(ctx context.Context, path, dir string) (int, error) {
	r, err := avi.Open(path)
	if errors.Is(err, avi.ErrNotMJPEG) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("open the video to pose: %w", err)
	}
	defer r.Close()
	var buf []byte
	for k := range r.Frames() {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if buf, err = r.ReadFrame(k, buf); err != nil {
			return 0, fmt.Errorf("read frame %d of %s: %w", k, path, err)
		}
		if err := os.WriteFile(filepath.Join(dir, FrameName(k)), buf, 0o644); err != nil {
			return 0, fmt.Errorf("write frame %d for the pose tool: %w", k, err)
		}
	}
	return r.Frames(), nil
}

// encodeFrames decodes the video with OpenCV and writes each frame as a
// JPEG into dir.
func encodeFrames(ctx context.Context, path, dir string) (int, error) {
	r, err := videoio.OpenFile(path)
	if err != nil {
		return 0, fmt.Errorf("open the video to pose: %w", err)
	}
	defer r.Close()
	var frame bgr.Image
	for k := 0; ; k++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		err := r.Read(&frame)
		if errors.Is(err, io.EOF) {
			return k, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read frame %d of %s: %w", k, path, err)
		}
		data, err := videoio.EncodeJPEG(frame, frameQuality)
		if err != nil {
			return 0, fmt.Errorf("encode frame %d for the pose tool: %w", k, err)
		}
		if err := os.WriteFile(filepath.Join(dir, FrameName(k)), data, 0o644); err != nil {
			return 0, fmt.Errorf("write frame %d for the pose tool: %w", k, err)
		}
	}
}
