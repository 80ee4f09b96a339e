"""The fault campaign (issue 8): faults, bad input, each reported as tried / survived / lost."""
