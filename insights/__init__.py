"""数据看板 insights: the dashboard panels, fed by selectors that respect visibility.

Floor: above customers, below channels and rules, which register their panels here.
"""
