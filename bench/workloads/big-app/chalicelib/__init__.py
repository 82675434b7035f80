"""Helpers of the big-app workload (named like seed-app's package, which the peer scripts copy)."""
