"""Video in: LiveKit tokens, the embedded LiveKit-compatible endpoint, decode → JPEG → buffer.

The only package that imports aiortc and livekit; av is also imported by backends/imaging.py
(decoding images for the OCR backends).
"""
