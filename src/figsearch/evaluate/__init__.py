"""figsearch.evaluate"""
