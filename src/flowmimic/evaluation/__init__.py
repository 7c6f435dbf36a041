"""Evaluation of reconstructions: fixed windows (`reconstruct`), per-frame joint errors as the field
defines them (`metrics`), and per-sequence sums, figures and bootstrap intervals (`tally`); of
generated motion: distribution metrics (`motion_metrics`), sets of generated windows (`generated`)
and in-betweening (`inbetween`)."""
