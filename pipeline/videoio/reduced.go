package videoio

import (
	"fmt"

	"gocv.io/x/gocv"

	"github.com/referee-project/referee/pipeline/bgr"
)

// DecodeReduced decompresses JPEG or PNG bytes into dst as BGR at 1/factor
// of their width and height (factor 1, 2, 4 or 8, sizes rounded up),
// reusing dst.Pix when it is large enough. For JPEG the shrinking happens
// inside the decoder (libjpeg's DCT scaling), which makes a frame for
// analysis several times cheaper than Decode followed by Resize. On error
// dst is unchanged. It is safe for concurrent use (with different dst).
func DecodeReduced(data []byte, factor int, dst *bgr.Image) error {
	var flag gocv.IMReadFlag
	switch factor {
	case 1:
		flag = gocv.IMReadColor
	case 2:
		flag = gocv.IMReadReducedColor2
	case 4:
		flag = gocv.IMReadReducedColor4
	case 8:
		flag = gocv.IMReadReducedColor8
	default:
		return fmt.Errorf("decode picture: reduction factor %d is not 1, 2, 4 or 8", factor)
	}
	return decode(data, flag, dst)
}
