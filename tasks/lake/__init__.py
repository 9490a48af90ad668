"""The lake: its one partition rule, the staged writer, readers, the quarantine, and the one
atomic temp-then-rename write. Another format or store replaces this folder."""
