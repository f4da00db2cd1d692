"""Video in: LiveKit tokens, the embedded LiveKit-compatible endpoint, decode → JPEG → buffer.

The only package that imports aiortc, av and livekit.
"""
