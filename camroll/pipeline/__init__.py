"""The one step contract every stage follows, and the runner that checks consent for it."""
