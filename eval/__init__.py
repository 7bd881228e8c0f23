"""The grounding eval: reference sets, metrics, baselines and reports (`qa eval`)."""
