"""Evaluation: metrics (``metrics``), plots (``plots``) and one module per protocol
(``classifier``, ``scenes``/``pipeline``, ``verify``, ...). Every protocol writes a JSON report
and PNG plots; modules import their heavy dependencies lazily."""
