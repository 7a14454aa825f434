"""Pipeline stages: plain functions over a job and its files, no bookkeeping of their own."""
