"""Ingest: raw files checked, numbered, copied, decoded into arrays and catalogued atomically."""

from labledger.ingest.ingest import IngestPlan, plan, sha256_file

__all__ = ["IngestPlan", "plan", "sha256_file"]
