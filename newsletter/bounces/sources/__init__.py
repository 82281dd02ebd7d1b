"""Where bounce events come from besides the bounce mailbox: one module per source."""
