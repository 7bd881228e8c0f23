"""Browser chat (Gradio) and REST API (FastAPI), served together by `qa serve`."""

import os

# Offline by design: Gradio would otherwise look up api.gradio.app and huggingface.co on start (its version
# check and usage analytics). Set before anything here imports Gradio; a user may still opt in.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
