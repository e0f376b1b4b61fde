"""Input validation shared by every learner (called once, in ``fit``).

Labelled data go through :func:`check_labeled_data`, real-valued
(regression) targets through :func:`check_regression_data`; tuples of points
(weakly supervised learners: pairs, triplets, quadruplets) go through
:func:`check_tuples`, of which :func:`check_pairs` is the pair case. All
return new arrays: user data are never modified in place.
"""

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

__all__ = [
    "check_labeled_data",
    "check_regression_data",
    "check_partially_labeled_data",
    "UNLABELED",
    "check_tuples",
    "IndexedTuples",
    "check_tuple_labels",
    "check_pairs",
    "check_pair_labels",
    "FLOAT_DTYPES",
    "TUPLE_NAMES",
    "COMPARED_PAIRS",
]

FLOAT_DTYPES = (np.float64, np.float32)


def check_labeled_data(
    estimator,
    X,
    y,
    *,
    min_classes=2,
    min_samples_per_class=1,
    reset=True,
    dtype=FLOAT_DTYPES,
):
    """Validate ``(X, y)`` for a label-supervised learner.

    Parameters
    ----------
    estimator : estimator instance
        Receives ``n_features_in_`` (and ``feature_names_in_``) when ``reset``.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Class labels of any hashable type (strings work).
    min_classes : int, default=2
        Fewer distinct classes raise a ValueError.
    min_samples_per_class : int, default=1
        A class with fewer members raises a ValueError naming the class.
    reset : bool, default=True
        Passed to :func:`sklearn.utils.validation.validate_data`.
    dtype : dtype or tuple of dtypes
        Accepted float dtypes; other inputs are converted to the first one.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y_encoded : ndarray of shape (n_samples,), int
        Labels as indices into ``classes``.
    classes : ndarray of shape (n_classes,)
        The distinct labels, sorted.
    """
    X, y = validate_data(estimator, X, y, reset=reset, dtype=dtype, y_numeric=False)
    check_classification_targets(y)
    classes, y_encoded, counts = np.unique(y, return_inverse=True, return_counts=True)
    if classes.size < min_classes:
        # "1 class" is the wording scikit-learn's estimator checks look for.
        found = f"{classes.size} class" + ("" if classes.size == 1 else "es")
        raise ValueError(
            f"{type(estimator).__name__} needs at least {min_classes} classes in y, "
            f"got {found}."
        )
    if min_samples_per_class > 1 and counts.min() < min_samples_per_class:
        small = classes[counts < min_samples_per_class]
        raise ValueError(
            f"{type(estimator).__name__} needs at least {min_samples_per_class} samples "
            f"in every class; class(es) {small[:5].tolist()} have fewer "
            f"(smallest count: {counts.min()})."
        )
    return X, y_encoded.astype(np.intp, copy=False), classes


#: Name of the tuples of each size, in messages and docstrings.
TUPLE_NAMES = {2: "pairs", 3: "triplets", 4: "quadruplets"}

#: The two pairs of points whose distances a tuple compares: a triplet
#: (a, b, c) states d(a, b) < d(a, c); a quadruplet (a, b, c, d) states
#: d(a, b) < d(c, d). Pairs (size 2) compare nothing (they carry a label).
COMPARED_PAIRS = {3: ((0, 1), (0, 2)), 4: ((0, 1), (2, 3))}

# What +1 and -1 mean for labelled tuples of each size.
_LABEL_MEANING = {
    2: ("+1 (similar) and -1 (dissimilar)", ""),
    3: ("+1 (d(a, b) < d(a, c)) and -1 (the reverse)", " (0 = the reverse)"),
    4: ("+1 (d(a, b) < d(c, d)) and -1 (the reverse)", " (0 = the reverse)"),
}


def _tuple_name(tuple_size):
    return TUPLE_NAMES.get(tuple_size, f"{tuple_size}-tuples")


#: The numeric label of an unlabelled sample, for learners that draw constraints
#: from partially labelled data (as in metric-learn).
UNLABELED = -1


def check_partially_labeled_data(estimator, X, y):
    """Validate ``(X, y)`` where the number -1 marks an unlabelled sample.

    For learners that draw constraints from labels (:mod:`skmetric.constraints`):
    unlabelled samples take part in no constraint.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y_encoded : ndarray of shape (n_samples,), int
        Index of each labelled sample's class among the labelled classes, -1
        for the unlabelled ones.
    classes : ndarray of shape (n_classes,)
        The distinct labels, sorted (-1 included when present).
    """
    X, y_encoded, classes = check_labeled_data(estimator, X, y, min_classes=2)
    if classes.dtype.kind in "iuf" and np.any(classes == UNLABELED):
        y_encoded = np.where(classes[y_encoded] == UNLABELED, UNLABELED, y_encoded - 1)
        n_labelled = classes.size - 1
        if n_labelled < 2:
            raise ValueError(
                f"{type(estimator).__name__} needs at least 2 labelled classes in y "
                f"(label {UNLABELED} marks unlabelled samples), got {n_labelled}."
            )
    return X, y_encoded.astype(np.intp, copy=False), classes


def check_tuple_labels(y, n_tuples=None, *, tuple_size=2):
    """Validate tuple labels and return them as an int array in {-1, +1}.

    For pairs, +1 means similar and -1 dissimilar; for triplets and
    quadruplets, +1 means the tuple's comparison holds (``d(a, b) < d(a, c)``,
    resp. ``d(a, b) < d(c, d)``) and -1 that it is reversed. {0, 1} is
    accepted as the same encoding (0 for -1); booleans are read as {0, 1}.
    """
    noun = _tuple_name(tuple_size)
    label = noun[:-1].capitalize() if noun.endswith("s") else noun
    meaning, zero = _LABEL_MEANING.get(tuple_size, _LABEL_MEANING[3])
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{label} labels must be 1-D, got shape {y.shape}.")
    if n_tuples is not None and y.shape[0] != n_tuples:
        raise ValueError(
            f"Got {y.shape[0]} {label.lower()} labels for {n_tuples} {noun}; they must match."
        )
    if y.dtype.kind not in "biuf":
        raise ValueError(
            f"{label} labels must be numeric: {meaning}, or 1 and 0; got dtype {y.dtype}."
        )
    values = set(np.unique(y).tolist())
    if values <= {-1, 1}:
        return y.astype(np.intp)
    if values <= {0, 1}:
        return np.where(y == 1, 1, -1).astype(np.intp)
    raise ValueError(
        f"{label} labels must be {meaning}, or 1 and 0{zero}; "
        f"got values {sorted(values)[:10]}."
    )


def check_pair_labels(y, n_pairs=None):
    """Validate pair labels and return them as an int array in {-1, +1}.

    Accepted encodings: {-1, +1} (dissimilar, similar) and, equivalently,
    {0, 1} (0 means dissimilar). Booleans are read as {0, 1}.
    """
    return check_tuple_labels(y, n_pairs, tuple_size=2)


class IndexedTuples:
    """Tuples given as integer indices into a set of points (no point is copied).

    What :func:`check_tuples` returns for tuples of indices when asked for the
    indexed form (``return_indexed=True``): the tuple ``t`` consists of the
    points ``points[indices[t]]``. ``shape`` is the shape the materialised
    tuples would have, ``(n_tuples, tuple_size, n_features)``.

    Parameters
    ----------
    points : ndarray of shape (n_points, n_features)
        Validated float array (the preprocessor's array itself when it needed
        no conversion).
    indices : ndarray of shape (n_tuples, tuple_size), intp
        Row indices into ``points``, all in range.
    """

    def __init__(self, points, indices):
        self.points = points
        self.indices = indices

    @property
    def shape(self):
        return (self.indices.shape[0], self.indices.shape[1], self.points.shape[1])

    @property
    def dtype(self):
        return self.points.dtype

    def __len__(self):
        return self.indices.shape[0]

    def __getitem__(self, rows):
        """The tuples ``rows`` (a mask, slice or index array), still indexed."""
        return IndexedTuples(self.points, self.indices[rows])

    def materialize(self):
        """The tuples as one new array of shape (n_tuples, tuple_size, n_features)."""
        return self.points[self.indices]

    def diff(self, i, j):
        """``points of position i - points of position j``, shape (n_tuples, n_features)."""
        return self.points[self.indices[:, i]] - self.points[self.indices[:, j]]


def index_points(tuples):
    """Turn tuples of points into index tuples into their distinct points.

    Parameters
    ----------
    tuples : ndarray of shape (n_tuples, tuple_size, n_features)

    Returns
    -------
    points : ndarray of shape (n_points, n_features)
    index : ndarray of shape (n_tuples, tuple_size), int
        ``points[index]`` equals ``tuples``.

    Rows are sorted by a fixed projection and identical neighbours merged
    (O(n log n), no row-wise lexicographic sort); two equal rows separated by
    a distinct row with the same projection stay two points, which is harmless.
    """
    n, k, d = tuples.shape
    rows = tuples.reshape(n * k, d)
    order = np.argsort(rows @ np.sqrt(np.arange(2.0, d + 2.0)), kind="stable")
    ordered = rows[order]
    new = np.ones(n * k, dtype=bool)
    new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    group = np.cumsum(new) - 1
    index = np.empty(n * k, dtype=np.intp)
    index[order] = group
    return ordered[new], index.reshape(n, k)


def tuple_points(tuples, dtype=None):
    """(points, index) of validated tuples: their distinct points and each tuple as row indices.

    ``tuples`` is an array of shape (n_tuples, tuple_size, n_features), taken
    with ``dtype``, or an :class:`IndexedTuples` (a ``preprocessor``), of
    which only the referenced points are gathered and deduplicated (no
    tuple is materialised). ``points[index]`` equals the tuples either way.
    """
    if isinstance(tuples, IndexedTuples):
        used, inverse = np.unique(tuples.indices, return_inverse=True)
        points, first = index_points(tuples.points[used][:, None, :])
        return points, first[:, 0][inverse.reshape(tuples.indices.shape)]
    return index_points(np.asarray(tuples, dtype=dtype))


def _check_preprocessor_points(preprocessor, dtype):
    """The preprocessor's array of points, validated (no copy when already valid)."""
    points = check_array(preprocessor, dtype=dtype, input_name="preprocessor")
    if points.shape[1] < 1:
        raise ValueError("The preprocessor's points have 0 features; at least one is required.")
    return points


def _indexed_tuples(tuples, preprocessor, tuple_size, dtype):
    """Validate 2-D integer tuples against ``preprocessor``; an :class:`IndexedTuples`."""
    noun = _tuple_name(tuple_size)
    idx = np.asarray(tuples)
    if idx.shape[1] != tuple_size:
        raise ValueError(
            f"{noun.capitalize()} of indices must be an array of shape (n_{noun}, "
            f"{tuple_size}): expected tuples of {tuple_size} indices, got {idx.shape[1]} "
            f"(shape {idx.shape})."
        )
    if idx.shape[0] < 1:
        raise ValueError(f"Found 0 {noun}; at least one is required.")
    if idx.dtype.kind not in "iu":
        raise ValueError(
            f"{noun.capitalize()} given as a 2-D array are indices into the preprocessor's "
            f"points and must be integers; got dtype {idx.dtype}."
        )
    if callable(preprocessor):
        unique, inverse = np.unique(idx, return_inverse=True)
        points = check_array(
            preprocessor(unique), dtype=dtype, input_name="the preprocessor's output"
        )
        if points.shape[0] != unique.size:
            raise ValueError(
                f"The preprocessor returned {points.shape[0]} points for {unique.size} "
                "indices; a callable preprocessor must map an array of indices to an "
                "array of shape (n_indices, n_features)."
            )
        return IndexedTuples(points, inverse.reshape(idx.shape).astype(np.intp, copy=False))
    points = _check_preprocessor_points(preprocessor, dtype)
    low, high = int(idx.min()), int(idx.max())
    if low < 0 or high >= points.shape[0]:
        bad = low if low < 0 else high
        raise ValueError(
            f"{noun.capitalize()} hold index {bad}, out of range for the preprocessor's "
            f"{points.shape[0]} points (valid: 0 to {points.shape[0] - 1})."
        )
    return IndexedTuples(points, idx.astype(np.intp, copy=False))


def check_tuples(
    tuples,
    y=None,
    *,
    tuple_size,
    dtype=FLOAT_DTYPES,
    require_both_labels=False,
    require_distinct=None,
    preprocessor=None,
    return_indexed=False,
):
    """Validate an array of tuples of points of shape (n_tuples, tuple_size, n_features).

    Pairs (``tuple_size=2``) carry a label, similar or dissimilar; triplets
    ``(a, b, c)`` state ``d(a, b) < d(a, c)`` and quadruplets ``(a, b, c, d)``
    state ``d(a, b) < d(c, d)`` (see ``COMPARED_PAIRS``).

    With a ``preprocessor``, tuples may instead be given as integer indices of
    shape (n_tuples, tuple_size) into a set of points (metric-learn's
    ``preprocessor``): 10^6 pairs over 10^4 points then cost 2 * 10^6
    integers, not 2 * 10^6 copied points.

    Parameters
    ----------
    tuples : array-like of shape (n_tuples, tuple_size, n_features) or (n_tuples, tuple_size)
        Tuples of points, or (with a ``preprocessor``) of integer indices.
    y : array-like of shape (n_tuples,), default=None
        Tuple labels in {-1, +1} (or {0, 1}), see :func:`check_tuple_labels`.
    tuple_size : int
        Number of points in each tuple (2, 3 or 4).
    dtype : dtype or tuple of dtypes
        Accepted float dtypes; other inputs are converted to the first one.
    require_both_labels : bool, default=False
        If True, a ValueError is raised unless both labels are present.
    require_distinct : bool, default=None
        If True, the two points of each compared pair must differ (a triplet
        with ``a == b`` or ``a == c``, a quadruplet with ``a == b`` or
        ``c == d``, as identical rows, raises a ValueError: such a comparison
        is empty or impossible). None means True for triplets and
        quadruplets, False for pairs.
    preprocessor : array-like of shape (n_points, n_features) or callable, default=None
        What 2-D integer tuples index: an array of points (tuple ``t`` is
        ``preprocessor[tuples[t]]``), or a callable mapping a 1-D array of
        indices to the array of their points (called once, on the distinct
        indices). Tuples of points (3-D) are accepted with it too.
    return_indexed : bool, default=False
        With tuples of indices, return an :class:`IndexedTuples` (the
        validated points and indices; no tuple is materialised) instead of
        the tuples of points.

    Returns
    -------
    tuples : ndarray of shape (n_tuples, tuple_size, n_features) or IndexedTuples
        A new array (the input is never modified); an :class:`IndexedTuples`
        for indices with ``return_indexed=True``. Indices materialised here
        make one copy, ``points[indices]``, and no second one.
    y : ndarray of shape (n_tuples,) in {-1, +1}, only when ``y`` is given.
    """
    noun = _tuple_name(tuple_size)
    shape_doc = f"(n_{noun}, {tuple_size}, n_features)"
    arr = np.asarray(tuples) if not hasattr(tuples, "dtype") else tuples
    shape = getattr(arr, "shape", None)
    if getattr(arr, "ndim", None) == 2:
        if preprocessor is None:
            raise ValueError(
                f"{noun.capitalize()} must be an array of shape {shape_doc}; got shape "
                f"{shape}. A 2-D array of shape (n_{noun}, {tuple_size}) is read as indices "
                "into a set of points only when the estimator has a preprocessor "
                "(preprocessor=X, the array of points)."
            )
        tuples = _indexed_tuples(arr, preprocessor, tuple_size, dtype)
        if not return_indexed:
            tuples = tuples.materialize()
    elif getattr(arr, "ndim", None) != 3:
        more = (f", or (n_{noun}, {tuple_size}) indices into the preprocessor's points"
                if preprocessor is not None else "")
        raise ValueError(
            f"{noun.capitalize()} must be an array of shape {shape_doc}{more}; got shape {shape}."
        )
    elif arr.shape[1] != tuple_size:
        raise ValueError(
            f"{noun.capitalize()} must be an array of shape {shape_doc}: expected tuples "
            f"of {tuple_size} points, got {arr.shape[1]} (shape {shape})."
        )
    else:
        tuples = check_array(
            tuples, allow_nd=True, dtype=dtype, ensure_min_samples=1, input_name=noun
        )
    if tuples.shape[2] < 1:
        raise ValueError(f"{noun.capitalize()} have 0 features; at least one is required.")
    if require_distinct is None:
        require_distinct = tuple_size > 2
    if require_distinct:
        _check_distinct(tuples, tuple_size, noun)
    if y is None:
        return tuples
    y = check_tuple_labels(y, tuples.shape[0], tuple_size=tuple_size)
    if require_both_labels:
        if tuple_size == 2:
            pos, neg, pos_n, neg_n = ("similar (+1)", "dissimilar (-1)",
                                      "similar pairs (+1)", "dissimilar pairs (-1)")
        else:
            pos, neg = "+1", "-1"
            pos_n, neg_n = f"{noun} labelled +1", f"{noun} labelled -1"
        if not np.any(y == 1):
            raise ValueError(f"All {noun} are labelled {neg}; {pos_n} are needed.")
        if not np.any(y == -1):
            raise ValueError(f"All {noun} are labelled {pos}; {neg_n} are needed.")
    return tuples, y


def _check_distinct(tuples, tuple_size, noun):
    """ValueError when a compared pair of some tuple holds two identical points."""
    letters = "abcd"
    if isinstance(tuples, IndexedTuples):
        # One id per distinct row of points: compares rows without materialising.
        _, row_id = np.unique(tuples.points, axis=0, return_inverse=True)
        row_id = row_id.ravel()[tuples.indices]
    for i, j in COMPARED_PAIRS.get(tuple_size, ()):
        if isinstance(tuples, IndexedTuples):
            same = np.flatnonzero(row_id[:, i] == row_id[:, j])
        else:
            same = np.flatnonzero(np.all(tuples[:, i] == tuples[:, j], axis=1))
        if same.size:
            raise ValueError(
                f"{noun.capitalize()} must compare distinct points, but {same.size} of them "
                f"have {letters[i]} == {letters[j]} (identical rows; the first is "
                f"{noun[:-1]} {same[0]}). Remove them."
            )


def check_pairs(
    pairs, y=None, *, dtype=FLOAT_DTYPES, require_both_labels=False, preprocessor=None,
    return_indexed=False,
):
    """Validate an array of pairs of shape (n_pairs, 2, n_features).

    The ``tuple_size=2`` case of :func:`check_tuples` (``preprocessor`` and
    ``return_indexed`` as there: pairs of indices of shape (n_pairs, 2)).

    Parameters
    ----------
    pairs : array-like of shape (n_pairs, 2, n_features)
    y : array-like of shape (n_pairs,), default=None
        Pair labels, see :func:`check_pair_labels`.
    require_both_labels : bool, default=False
        If True, a ValueError is raised unless both similar and dissimilar
        pairs are present.

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2, n_features)
    y : ndarray of shape (n_pairs,) in {-1, +1}, only when ``y`` is given.
    """
    return check_tuples(
        pairs, y, tuple_size=2, dtype=dtype, require_both_labels=require_both_labels,
        preprocessor=preprocessor, return_indexed=return_indexed,
    )


def check_regression_data(estimator, X, y, *, min_samples=2, reset=True, dtype=FLOAT_DTYPES):
    """Validate ``(X, y)`` for a learner supervised by real-valued targets.

    Parameters
    ----------
    estimator : estimator instance
        The learner being fitted: named in the messages, and given
        ``n_features_in_`` / ``feature_names_in_`` by ``validate_data``.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Real-valued targets; strings (class names) raise a ValueError.
    min_samples : int, default=2
        Fewer samples raise a ValueError.
    reset : bool, default=True
        Passed to :func:`sklearn.utils.validation.validate_data`.
    dtype : dtype or tuple of dtypes
        Accepted float dtypes for X.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,), float64
        A new array.

    Raises
    ------
    ValueError
        For non-numeric or constant targets, or too few samples.
    """
    name = type(estimator).__name__
    if y is not None:
        y_arr = np.asarray(y)
        if y_arr.dtype.kind in "USO":
            try:
                y_arr.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{name} needs real-valued (regression) targets y; got non-numeric "
                    f"values such as {y_arr.ravel()[:3].tolist()}."
                ) from None
    X, y = validate_data(estimator, X, y, reset=reset, dtype=dtype, y_numeric=True)
    if X.shape[0] < min_samples:
        raise ValueError(
            f"{name} needs at least {min_samples} samples, got {X.shape[0]} sample"
            + ("" if X.shape[0] == 1 else "s") + "."
        )
    y = np.array(y, dtype=np.float64)
    if np.ptp(y) == 0:
        raise ValueError(
            f"{name} needs a non-constant target y: every value is {y[0]!r}, so no "
            "metric predicts it better than any other."
        )
    return X, y
