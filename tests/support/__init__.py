"""What the tests share: configurations built from the settings' defaults, the in-process
app, the served process, the captured samples, the reference decoder (the oracle), and the
dashboard's known data set."""
