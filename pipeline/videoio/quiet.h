#ifndef REFEREE_VIDEOIO_QUIET_H
#define REFEREE_VIDEOIO_QUIET_H

#ifdef __cplusplus
extern "C" {
#endif

// referee_opencv_silence turns OpenCV's own log output off.
void referee_opencv_silence(void);

#ifdef __cplusplus
}
#endif

#endif
