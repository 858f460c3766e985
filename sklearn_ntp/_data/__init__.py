"""NTP data: distinct contexts, sparse next-token distributions, weights; feature scaling."""
