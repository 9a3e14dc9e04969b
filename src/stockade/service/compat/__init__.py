"""The Judge0 CE and Piston v2 compatible wire forms (docs/compat.md), over our own: each translates its
API's request into a wire.ExecuteIn and our result into its answer. The routes are routes/judge0.py and
routes/piston.py; they run the one engine path like /v1/execute.

- judge0.py: statuses, a submission body -> ExecuteIn, a result -> a Judge0 record, rendering
- submissions.py: the store of Judge0 submissions (SQLite) and the runner of wait=false ones
- piston.py: a Piston execute body -> ExecuteIn, semver ranges, a result -> Piston's stages
"""
