"""Evaluation of reconstructions: fixed windows (`reconstruct`), per-frame joint errors as the field
defines them (`metrics`), and per-sequence sums, figures and bootstrap intervals (`tally`)."""
