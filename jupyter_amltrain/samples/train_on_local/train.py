"""Ridge regression on scikit-learn's bundled diabetes data, logging alpha and MSE for each model."""

import argparse
import os

import joblib
import mylib
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from jupyter_amltrain.core.run import Run

parser = argparse.ArgumentParser()
parser.add_argument("--alphas", type=int, default=20, help="how many alpha values to try")
args = parser.parse_args()

os.makedirs("./outputs", exist_ok=True)
run = Run.get_context()
features, target = load_diabetes(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(features, target, test_size=0.2, random_state=0)

for alpha in mylib.get_alphas()[: args.alphas]:
    model = Ridge(alpha=alpha).fit(x_train, y_train)
    mse = mean_squared_error(y_test, model.predict(x_test))
    run.log("alpha", alpha)
    run.log("mse", mse)
    joblib.dump(model, os.path.join("./outputs", f"ridge_{alpha:0.2f}.pkl"))
    print(f"alpha is {alpha:0.2f}, and mse is {mse:0.2f}")
