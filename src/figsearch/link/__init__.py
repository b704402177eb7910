"""figsearch.link"""
