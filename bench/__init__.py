"""`make bench`: search and list speed on generated corpora, as ratios against /healthz."""
