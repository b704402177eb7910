"""figsearch.index"""
