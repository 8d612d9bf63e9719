"""Reports for the district leadership: the weekly response-effectiveness report (周报)
and the history it can include (`yuqing import history`).

`figures` computes in SQL, `weekly` assembles one ISO week, `charts` draws SVG,
`render` writes HTML, PDF and JSON, `archive` keeps what was generated for the leaders,
`history` imports past items; `cli` registers `yuqing report` and `yuqing import`.
"""
