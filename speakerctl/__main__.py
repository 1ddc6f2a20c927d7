"""`python -m speakerctl` runs the CLI."""

from speakerctl.main import main

main()
