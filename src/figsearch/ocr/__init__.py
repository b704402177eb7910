"""figsearch.ocr"""
