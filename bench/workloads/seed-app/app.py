"""Seed-sized Chalice app for bench/pipelines.py: chalice + numpy + pandas, like the seeds' backend."""

import numpy as np
import pandas as pd
from chalice import Chalice
from chalicelib.scores import summary

app = Chalice(app_name="seed-app")


@app.route("/health")
def health():
    return {"status": "ok"}


@app.route("/stats/{n}")
def stats(n):
    frame = pd.DataFrame({"x": np.arange(int(n), dtype=float)})
    return summary(frame)
