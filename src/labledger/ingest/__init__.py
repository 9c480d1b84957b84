"""Ingest: raw files checked, numbered, copied, decoded into arrays and catalogued atomically."""

from labledger.ingest.ingest import IngestPlan, IngestResult, plan, sha256_file

__all__ = ["IngestPlan", "IngestResult", "plan", "sha256_file"]
