"""The vocabulary every part of parklink shares: the asset hierarchy, samples and their quality."""
