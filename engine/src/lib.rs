//! Cadence engine library: RTSP control, RTP pacing and the shard runtime.
