#include <opencv2/core/utils/logger.hpp>

#include "quiet.h"

void referee_opencv_silence(void) {
	cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
}
