"""What a model learns from a training set: a harmful-request classifier's AUPRC on the test split.

Logistic regression (L2, C = 1, lbfgs: deterministic) on the standardised mean-pooled residual of
the feature space's layer; the scaler is fit on the training set only. AUPRC (average precision)
on the whole test split, which no score ever sees.
"""

from __future__ import annotations

import numpy as np


def auprc(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(C=1.0, max_iter=5000).fit(scaler.transform(train_x), train_y)
    return float(average_precision_score(test_y, clf.decision_function(scaler.transform(test_x))))
