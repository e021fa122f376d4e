"""The verifier's one failure."""


class VerificationError(Exception):
    """A proof, checkpoint, signature or record that does not hold."""
