"""企业微信 the WeCom connection: callback crypto and endpoint, events, API client,
outbound sync, full pull, simulator.
"""
