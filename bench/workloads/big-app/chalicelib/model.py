"""A scikit-learn fit of the stats frame."""

from sklearn.linear_model import LinearRegression


def fit(frame):
    model = LinearRegression().fit(frame[["x"]], frame["y"])
    return float(model.score(frame[["x"]], frame["y"]))
