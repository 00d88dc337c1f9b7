"""Reference standards: the registry (standards, certificates, traceability, channel links), its
import/export and command line, the history readers of the time-series stores, and the scheduled
analytics that predict each standard's value and watch its check measurements.

See docs/standards.md. The pure analytics they schedule are in :mod:`gateway.analytics`.
"""
