"""Math that more than one model needs, written once."""
