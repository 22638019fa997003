"""What the tests share: configurations built from the settings' defaults, the in-process
app, the served process, the captured samples, and the reference decoder (the oracle)."""
