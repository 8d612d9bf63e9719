"""The web app: the HTTP API of DESIGN.md (FastAPI), sign-in, users (`yuqing users`)."""
