"""The built-in offline model `livesight/ocr`: rapidocr text reading plus frame statistics, no download, no GPU.

Modules: `reader` (the rapidocr adapter), `image` (decoding), `stats` (brightness, colours, change),
`intent` (what a question asks about), `tracks` (text across frames), `describe` / `segment` / `compose`
(the answer text), `model` (`OcrModel`, which ties them together). See docs/ocr-model.md.
"""

from livesight.backends.ocr.model import OcrModel

__all__ = ["OcrModel"]
