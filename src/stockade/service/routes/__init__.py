"""The HTTP routes, one module per API surface, each an `APIRouter` over the one engine path (Service's
pipeline steps, then `Engine.prepare` and `Engine.run`). A new surface (Judge0 or Piston compatibility,
judge mode, workspaces, MCP) is a new module here, included by app.create_app.

- deps.py: what every surface shares: the service of a request, its caller (auth, rate limit, quota)
- v1.py: the versioned API, /v1/execute, /v1/runtimes, /v1/diagnostics
- unversioned.py: /execute (an alias of /v1/execute), the probes /healthz and /readyz, /metrics
- execution.py: one execution of an /execute body (workspace lease, files out), shared by v1 and mcp
- workspaces.py: /v1/workspaces, a tenant's files kept across executions
- mcp.py: the MCP server's tools, and its streamable HTTP endpoint at /mcp
- playground.py: the browser playground's static files, served at /
"""
