"""The HTTP load benchmark (`make bench`): wrk against facegate and its baselines."""
