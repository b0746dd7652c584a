"""Human evaluation of two entries of an evaluation folder (``matrix-align humaneval``).

- ``sheet``: ``export``, the rating sheet (CSV and an offline HTML form), blinded, and its key;
- ``form``: the offline form;
- ``ratings``: reading the returned ratings, checked against the key;
- ``tally``: ``import``, win / tie / lose with intervals, into the folder's report;
- ``agreement``: Krippendorff's alpha.
"""
