"""A scikit-learn hyper-parameter search whose fits run on minray actors, through joblib.

``register_ray()`` adds the joblib backend "ray" (also "minray"); inside
``joblib.parallel_backend("ray")`` every joblib-parallel loop of scikit-learn
(here the search's cross-validation fits) runs on the cluster.

Run: ``python examples/joblib_sklearn.py`` (as a Ray program: ``from ray.util.joblib ...``)
"""

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import RandomizedSearchCV
from sklearn.svm import SVC

from minray.util.joblib import register_ray

digits = load_digits()
param_space = {
    "C": np.logspace(-6, 6, 30),
    "gamma": np.logspace(-8, 8, 30),
    "tol": np.logspace(-4, -1, 30),
    "class_weight": [None, "balanced"],
}
model = SVC(kernel="rbf")
# the seed program uses n_iter=300; 10 keeps this example short
search = RandomizedSearchCV(model, param_space, cv=5, n_iter=10, verbose=10, random_state=0)

register_ray()
with joblib.parallel_backend("ray"):
    search.fit(digits.data, digits.target)

best = {
    name: (value.item() if hasattr(value, "item") else value)
    for name, value in sorted(search.best_params_.items())
}
print("best params:", best)
print(f"best cross-validated accuracy: {search.best_score_:.3f}")
