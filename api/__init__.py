"""HTTP front end (FastAPI) and the command line."""
