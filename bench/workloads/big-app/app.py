"""Big-dependency workload for bench/bigset.py: a small analytics API over the scientific stack."""

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.stats
import statsmodels.api as sm
from chalicelib.model import fit

ROUTES = {}


def route(path):
    def wrap(fn):
        ROUTES[path] = fn
        return fn

    return wrap


@route("/health")
def health(_params):
    return {"status": "ok", "versions": {m.__name__: m.__version__ for m in (np, pd, pa, numba, matplotlib)}}


@route("/stats")
def stats(params):
    n = int(params.get("n", 100))
    frame = pd.DataFrame({"x": np.arange(n, dtype=float)})
    frame["y"] = 2 * frame["x"] + np.random.default_rng(0).normal(size=n)
    table = pa.Table.from_pandas(frame)
    ols = sm.OLS(frame["y"], sm.add_constant(frame["x"])).fit()
    fig, ax = plt.subplots()
    ax.plot(frame["x"], frame["y"])
    plt.close(fig)
    return {"rows": table.num_rows, "slope": float(ols.params["x"]), "normal": bool(scipy.stats.normaltest(
        frame["y"]).pvalue > 0), "score": fit(frame)}


def app(event, _context):
    path = event.get("rawPath") or event.get("path") or "/health"
    body = ROUTES.get(path, health)(event.get("queryStringParameters") or {})
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
