"""The fine-tuning endpoint (README contract) that trains approved replies into adapters."""
