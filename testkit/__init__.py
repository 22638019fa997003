"""Tooling shared by the tests (tests/) and the benchmarks (bench/), shipped with neither:

- :mod:`testkit.pg`: real PostgreSQL servers (embedded, or ``TEST_DATABASE_URL``) and
  scratch databases;
- :mod:`testkit.hostile`: hostile and broken request bodies, and the committed fuzz corpus;
- :mod:`testkit.tcpproxy`: a TCP proxy that cuts or stalls connections to PostgreSQL;
- :mod:`testkit.browser`: a headless Chromium (Selenium, Debian's chromium-driver) and an app
  served from a thread, for the dashboard's browser tests and its screenshot.
"""
