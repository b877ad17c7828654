"""Adapters: the only code that imports boto3 or opens a socket."""
