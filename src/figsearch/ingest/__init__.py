"""figsearch.ingest"""
