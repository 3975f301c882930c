"""The owner's side of privacy: what is held about them, and its deletion."""
