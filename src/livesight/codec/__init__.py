"""Codec work with no state of ours: bitstream facts (keyframes, sizes), decoding a run of frames, JPEG."""
