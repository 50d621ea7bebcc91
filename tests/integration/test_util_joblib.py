"""minray.util.joblib: joblib's Parallel (and scikit-learn searches) on minray actors."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

joblib = pytest.importorskip("joblib")

from joblib import Parallel, delayed  # noqa: E402

from minray.util.joblib import register_ray  # noqa: E402


def square(x):
    return x * x


def slow_pid(_):
    time.sleep(0.05)
    return os.getpid()


def fails_on_three(x):
    if x == 3:
        raise ValueError("three")
    return x


@pytest.mark.parametrize("name", ["ray", "minray"])
def test_parallel_runs_under_both_backend_names(cluster, name):
    register_ray()
    with joblib.parallel_backend(name):
        assert Parallel(n_jobs=2)(delayed(square)(i) for i in range(10)) == [
            i * i for i in range(10)
        ]
        pids = set(Parallel(n_jobs=2, batch_size=1)(delayed(slow_pid)(i) for i in range(8)))
    assert len(pids) == 2 and os.getpid() not in pids


def test_n_jobs_minus_one_uses_every_cluster_cpu_and_errors_keep_their_type(cluster):
    register_ray()
    with joblib.parallel_backend("ray"):
        assert joblib.effective_n_jobs(-1) == 2
        assert joblib.effective_n_jobs(8) == 2  # capped by the cluster's CPUs
        pids = set(Parallel(n_jobs=-1, batch_size=1)(delayed(slow_pid)(i) for i in range(8)))
        assert len(pids) == 2
        with pytest.raises(ValueError, match="three"):
            Parallel(n_jobs=2)(delayed(fails_on_three)(i) for i in range(6))
        assert Parallel(n_jobs=2)(delayed(square)(i) for i in range(4)) == [0, 1, 4, 9]
        # a managed Parallel keeps one pool for its calls
        with Parallel(n_jobs=2, batch_size=1) as parallel:
            first = set(parallel(delayed(slow_pid)(i) for i in range(4)))
            second = set(parallel(delayed(slow_pid)(i) for i in range(4)))
            assert first == second and len(first) == 2
        # one job: joblib runs it in the caller
        assert Parallel(n_jobs=1)(delayed(os.getpid)() for _ in range(2)) == [os.getpid()] * 2


def test_the_sklearn_search_finds_what_loky_finds(cluster):
    np = pytest.importorskip("numpy")
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.svm import SVC

    digits = load_digits()
    param_space = {
        "C": np.logspace(-6, 6, 30),
        "gamma": np.logspace(-8, 8, 30),
        "tol": np.logspace(-4, -1, 30),
        "class_weight": [None, "balanced"],
    }

    def best_params(backend):
        search = RandomizedSearchCV(SVC(kernel="rbf"), param_space, cv=3, n_iter=6, random_state=0)
        with joblib.parallel_backend(backend, n_jobs=2):
            search.fit(digits.data, digits.target)
        return search.best_params_, search.cv_results_["mean_test_score"]

    register_ray()
    ray_params, ray_scores = best_params("ray")
    loky_params, loky_scores = best_params("loky")
    assert ray_params == loky_params
    assert list(ray_scores) == list(loky_scores)


def test_importing_works_without_joblib_and_register_ray_says_what_to_install(tmp_path):
    # a directory that shadows joblib with a module that fails to import
    (tmp_path / "joblib.py").write_text("raise ImportError('no joblib here')\n")
    code = (
        "import minray.util.joblib as m\n"
        "try:\n"
        "    m.register_ray()\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "pip install joblib" in result.stdout
