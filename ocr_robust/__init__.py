"""ocr-robust: OCR line recognizers trained to stay right on real, damaged documents."""

__all__: list[str] = []

__version__ = "0.1.0"
