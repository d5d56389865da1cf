"""Data quality: the validation findings and their report, the checks, cleaning (missing data, outages, outliers)
and the multicollinearity / seasonality diagnostics of the inspection report."""
