"""Credit-risk instruments: Gini and KS, gains tables, bootstrap intervals, population
stability, reason codes, scorecard points and the model card.

Pure computations on tensors, arrays and frames. The package imports only torch, numpy,
pandas, captum (lazily, for reason codes) and `contracts`, never `datamodules` or
`lightning_modules`, so the data module, the model and the callbacks can all use it.
"""
