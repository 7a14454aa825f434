"""The intake: tickets and files handed over in a shared folder, checked and taken in."""
