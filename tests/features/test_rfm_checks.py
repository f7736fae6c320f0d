"""scikit-learn's estimator checks on the RFM estimators, in several configurations.

No check is expected to fail, so no ``expected_failed_checks`` are declared. The
quadratic-kernel configurations carry the ``poor_score`` tag (set in the estimators'
``__sklearn_tags__``): a homogeneous quadratic kernel has no constant or linear part, so
the training-score thresholds of check_regressors_train / check_classifiers_train do not
apply to it; every other check runs on them.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from deepmanifold.features.rfm import RFMClassifier, RFMRegressor

ESTIMATORS = [
    RFMRegressor(),
    RFMClassifier(),
    RFMRegressor(kernel="gaussian", diag=True, validation_fraction=0.25, agop_samples=20),
    RFMClassifier(kernel="gaussian", diag=True, validation_fraction=0.25, centering=True),
    RFMRegressor(solver="cg", n_iter=2),
    RFMClassifier(solver="cg", n_iter=2),
    RFMRegressor(kernel="quadratic", power=0.5),
    RFMClassifier(kernel="quadratic", power=0.5, centering=True),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
