"""figsearch.server"""
