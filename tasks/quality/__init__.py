"""Data quality: the GE engine, the frame it reads, validation and routing, the quality
tables, Data Docs, health checks and the dashboard. Imports nothing of Prefect at load."""
