"""Task lifecycle and rules. No AWS SDK here: adapters are passed in."""
