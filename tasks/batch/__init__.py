"""One micro-batch: claim its files, route them (pure), commit by the roll-forward protocol
(recover, abandon), and compaction, itself a batch."""
