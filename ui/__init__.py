"""Browser chat (Gradio) and REST API (FastAPI), served together by `qa serve`."""
